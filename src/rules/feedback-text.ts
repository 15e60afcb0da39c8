/**
 * What Sarafan tells the CRM (issue 9): timeline comments on deals and people and notifications
 * to the responsible user, in the portal's language. Pure: the texts are a function of the event.
 */
import type { PersonRef, RejectReason } from './attribute-referral.js';

export type Lang = 'ru' | 'en';

export type FeedbackEvent =
  /** A referral was recorded; `referee` is who was referred (shown on the deal). */
  | { type: 'referral_attributed'; code: string | null; referrer: PersonRef | null; referee: PersonRef | null }
  | { type: 'referral_rejected'; code: string | null; reason: RejectReason; referrer: PersonRef | null }
  /** An admin turned a rejection into an active referral. */
  | { type: 'referral_overridden'; referrer: PersonRef | null; userId: number; comment: string }
  /** A reward entry of a deal (referral level or welcome bonus); `amount` in minor units, signed. */
  | { type: 'reward_credited' | 'reward_reversed'; amount: number; currency: string; dealId: number | null; level: number; welcome: boolean; beneficiary: PersonRef | null }
  /** Bonus written off against a deal (the redemption use case). */
  | { type: 'redeemed'; amount: number; currency: string; dealId: number };

const REASONS: Record<Lang, Record<RejectReason, string>> = {
  ru: {
    self_referral: 'самоприглашение (тот же клиент, телефон или e-mail)',
    cycle: 'приглашение по кругу',
    already_customer: 'клиент уже покупал до приглашения',
    unknown_code: 'неизвестный код',
  },
  en: {
    self_referral: 'self-referral (same client, phone or e-mail)',
    cycle: 'referral cycle',
    already_customer: 'already a customer before the referral',
    unknown_code: 'unknown code',
  },
};

function person(lang: Lang, p: PersonRef | null): string {
  if (!p) return '—';
  const kind = lang === 'ru' ? (p.entity === 'contact' ? 'контакт' : 'лид') : p.entity;
  return `${kind} #${p.id}`;
}

/** `1 234.50 RUB`: minor units as a decimal with two places and a thin grouping space. */
export function formatAmount(minor: number, currency: string): string {
  const abs = Math.abs(minor);
  const whole = Math.floor(abs / 100)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return `${minor < 0 ? '-' : ''}${whole}.${String(abs % 100).padStart(2, '0')} ${currency}`;
}

/** The text of one event; `where` says whether it is shown on the deal, on a person or to a user. */
export function feedbackText(lang: Lang, event: FeedbackEvent, where: 'deal' | 'person' | 'user'): string {
  const ru = lang === 'ru';
  switch (event.type) {
    case 'referral_attributed': {
      const code = event.code ? (ru ? ` по коду ${event.code}` : ` with code ${event.code}`) : '';
      if (where === 'deal' && event.referee) {
        return ru
          ? `Сарафан: клиент (${person(lang, event.referee)}) пришёл по рекомендации${code}, пригласил ${person(lang, event.referrer)}.`
          : `Sarafan: the client (${person(lang, event.referee)}) was referred${code} by ${person(lang, event.referrer)}.`;
      }
      return ru ? `Сарафан: пришёл по рекомендации${code}, пригласил ${person(lang, event.referrer)}.` : `Sarafan: referred${code} by ${person(lang, event.referrer)}.`;
    }
    case 'referral_rejected': {
      const code = event.code ? (ru ? ` по коду ${event.code}` : ` with code ${event.code}`) : '';
      return ru
        ? `Сарафан: рекомендация${code} отклонена — ${REASONS.ru[event.reason]}.`
        : `Sarafan: the referral${code} was rejected — ${REASONS.en[event.reason]}.`;
    }
    case 'referral_overridden':
      return ru
        ? `Сарафан: администратор (пользователь #${event.userId}) принял отклонённую рекомендацию, пригласил ${person(lang, event.referrer)}. Комментарий: ${event.comment}`
        : `Sarafan: an administrator (user #${event.userId}) accepted the rejected referral by ${person(lang, event.referrer)}. Comment: ${event.comment}`;
    case 'reward_credited':
    case 'reward_reversed': {
      const credited = event.type === 'reward_credited';
      const amount = formatAmount(Math.abs(event.amount), event.currency);
      const what = event.welcome ? (ru ? 'Приветственный бонус' : 'Welcome bonus') : ru ? `Награда за рекомендацию (уровень ${event.level})` : `Referral reward (level ${event.level})`;
      const verb = credited ? (ru ? 'начислена' : 'credited') : ru ? 'отменена' : 'reversed';
      const verbWelcome = credited ? (ru ? 'начислен' : 'credited') : ru ? 'отменён' : 'reversed';
      const v = event.welcome ? verbWelcome : verb;
      const deal = event.dealId !== null ? (ru ? ` за сделку #${event.dealId}` : ` for deal #${event.dealId}`) : '';
      if (where === 'person') return ru ? `Сарафан: ${what} ${amount} ${v}${deal}.` : `Sarafan: ${what} of ${amount} ${v}${deal}.`;
      const to = ru ? ` (${person(lang, event.beneficiary)})` : ` to ${person(lang, event.beneficiary)}`;
      return ru ? `Сарафан: ${what} ${amount} ${v}${deal}${to}.` : `Sarafan: ${what} of ${amount} ${v}${to}${deal}.`;
    }
    case 'redeemed': {
      const amount = formatAmount(event.amount, event.currency);
      return ru ? `Сарафан: списано ${amount} бонусов в оплату сделки #${event.dealId}.` : `Sarafan: ${amount} of bonus redeemed against deal #${event.dealId}.`;
    }
  }
}
