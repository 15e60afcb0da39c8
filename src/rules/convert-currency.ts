/**
 * Conversion of a deal amount into the program currency with the portal's rates (SPEC 5.1
 * currency). Bitrix24's currency list gives, per currency, AMOUNT base-currency units for
 * AMOUNT_CNT units of it (`crm.currency.list`); the cross rate from → to is
 * (AMOUNT_from / AMOUNT_CNT_from) / (AMOUNT_to / AMOUNT_CNT_to), kept with RATE_PLACES decimals.
 */
import { convertMinor, divideRates } from './money.js';

export interface RateRow {
  currency: string;
  amount: string;
  amountCnt: number;
}

/** One unit of `from` in `to`, as decimal text; null when either currency is not listed or has no usable rate. */
export function crossRate(rates: RateRow[], from: string, to: string): string | null {
  if (from === to) return '1';
  const f = rates.find((r) => r.currency === from);
  const t = rates.find((r) => r.currency === to);
  if (!f || !t || !(f.amountCnt > 0) || !(t.amountCnt > 0) || !Number.isInteger(f.amountCnt) || !Number.isInteger(t.amountCnt)) return null;
  // (f.amount × t.amountCnt) / (t.amount × f.amountCnt), each side kept as exact decimal text.
  const num = mulText(f.amount, t.amountCnt);
  const den = mulText(t.amount, f.amountCnt);
  return num && den ? divideRates(num, den) : null;
}

function mulText(decimal: string, factor: number): string | null {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(decimal.trim());
  if (!m) return null;
  const fraction = m[2] ?? '';
  const digits = (BigInt(m[1]! + fraction) * BigInt(factor)).toString().padStart(fraction.length + 1, '0');
  return fraction.length ? `${digits.slice(0, -fraction.length)}.${digits.slice(-fraction.length)}` : digits;
}

export type Conversion = { ok: true; amount: number; rate: string } | { ok: false };

/**
 * A deal amount (minor units of `from`) in the program currency. The rate fixed on the deal's
 * first win (`fixed`, for the same currency) wins over today's, so a settled deal is not
 * re-priced when the portal's rates move.
 */
export function convertDealAmount(args: { amount: number; from: string; to: string; rates: RateRow[] | null; fixed: { currency: string; rate: string } | null }): Conversion {
  const { amount, from, to, rates, fixed } = args;
  if (from === to) return { ok: true, amount, rate: '1' };
  const rate = fixed && fixed.currency === from ? fixed.rate : rates ? crossRate(rates, from, to) : null;
  if (rate === null) return { ok: false };
  return { ok: true, amount: convertMinor(amount, rate), rate };
}
