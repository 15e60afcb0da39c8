/** Amounts in the program currency and dates, formatted the portal's way for its language. */
import type { Lang } from './frame';

const LOCALE: Record<Lang, string> = { ru: 'ru-RU', en: 'en-US' };

export interface Formats {
  money(amount: number, currency?: string): string;
  signed(amount: number, currency?: string): string;
  date(iso: string): string;
  number(n: number): string;
}

export function formats(lang: Lang, programCurrency: () => string): Formats {
  const locale = LOCALE[lang];
  const money = (amount: number, currency = programCurrency()): string => {
    try {
      return new Intl.NumberFormat(locale, { style: 'currency', currency, minimumFractionDigits: 0, maximumFractionDigits: 2 }).format(amount);
    } catch {
      // A currency code Intl does not know (a portal's own): the number and the code.
      return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 2 }).format(amount)} ${currency}`;
    }
  };
  return {
    money,
    signed: (amount, currency) => (amount > 0 ? '+' : '') + money(amount, currency),
    date: (iso) => new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'long', year: 'numeric' }).format(new Date(iso)),
    number: (n) => new Intl.NumberFormat(locale).format(n),
  };
}
