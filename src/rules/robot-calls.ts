/**
 * Automation robots (issue 10, SPEC 4.4): what a call's document is, how its properties read,
 * and the texts of its answers in the portal's language. Pure: the handler does the work.
 */
import { fromMinor, percentOf, toMinor } from './money.js';

export type RobotDocument = { entity: 'deal' | 'lead'; id: number } | { entity: 'other'; raw: string };

/** `document_id[2]`: `DEAL_12`, `LEAD_45`; anything else (`CONTACT_7`, `DYNAMIC_…`) is not for Sarafan's robots. */
export function robotDocument(documentId: string): RobotDocument {
  const m = /^(DEAL|LEAD)_(\d{1,15})$/i.exec(documentId.trim());
  const id = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(id) || id <= 0) return { entity: 'other', raw: documentId };
  return { entity: m[1]!.toUpperCase() === 'DEAL' ? 'deal' : 'lead', id };
}

/**
 * A money property as the automation editor resolves it: `1500`, `1500.00`, `1 500,50`,
 * `1500.00|RUB` (money fields carry their currency). Null when it is not a positive amount.
 */
export function robotAmount(raw: string): number | null {
  const text = raw.replace(/\|[A-Z]{3}$/i, '').replace(/[\s\u00a0]/g, '').replace(',', '.');
  if (!/^\d+(\.\d{1,2})?$/.test(text)) return null;
  const minor = toMinor(text);
  return minor !== null && minor > 0 ? minor : null;
}

/** A percent property: `5`, `2.5`, `7,5` — more than 0, at most 100. */
export function robotPercent(raw: string): number | null {
  const text = raw.replace(/[\s%]/g, '').replace(',', '.');
  if (!/^\d+(\.\d{1,4})?$/.test(text)) return null;
  const p = Number(text);
  return p > 0 && p <= 100 ? p : null;
}

/** Amounts go back to the workflow as decimal text with two decimals ("1500.00"). */
export const robotMoney = (minor: number): string => fromMinor(minor).toFixed(2);

export type RobotFailure =
  | { reason: 'not_deal_or_lead' }
  | { reason: 'deals_only' }
  | { reason: 'document_not_found' }
  | { reason: 'no_client' }
  | { reason: 'invalid_property'; property: string }
  | { reason: 'missing_property'; property: string }
  | { reason: 'insufficient_balance' }
  | { reason: 'over_deal_limit' }
  | { reason: 'deal_closed' }
  | { reason: 'currency_not_converted' }
  | { reason: 'no_amount' }
  | { reason: 'not_processed' }
  | { reason: 'unknown_code' }
  | { reason: 'already_used' }
  | { reason: 'campaign_over' }
  | { reason: 'not_enrolled' }
  | { reason: 'refused'; message: string };

const TEXTS: Record<Exclude<RobotFailure['reason'], 'invalid_property' | 'missing_property' | 'refused'>, { ru: string; en: string }> = {
  not_deal_or_lead: { ru: 'Роботы Sarafan работают только в сделках и лидах', en: "Sarafan's robots work on deals and leads only" },
  deals_only: { ru: 'Этот робот работает только в сделках', en: 'This robot works on deals only' },
  document_not_found: { ru: 'Документ не найден в CRM', en: 'The document was not found in the CRM' },
  no_client: { ru: 'У документа нет клиента (контакта или лида)', en: 'The document has no client (contact or lead)' },
  insufficient_balance: { ru: 'Недостаточно бонусов на балансе клиента', en: "The client's available bonus is not enough" },
  over_deal_limit: { ru: 'Сумма больше, чем программа разрешает списать по этой сделке', en: 'The amount is more than the program allows to redeem on this deal' },
  deal_closed: { ru: 'Сделка проиграна или удалена', en: 'The deal is lost or deleted' },
  currency_not_converted: {
    ru: 'Нет курса валюты документа к валюте программы в настройках портала',
    en: "The portal's currency rates do not convert the document's currency into the program's",
  },
  no_amount: { ru: 'У документа не указана сумма', en: 'The document has no amount' },
  not_processed: { ru: 'Sarafan не смог обработать вызов, повторите попытку', en: 'Sarafan could not process the call, try again' },
  unknown_code: { ru: 'Промокод не найден', en: 'Unknown promo code' },
  already_used: { ru: 'Промокод уже использован', en: 'The promo code was already used' },
  campaign_over: { ru: 'Акция промокода закончилась', en: "The promo code's campaign is over" },
  not_enrolled: { ru: 'Клиент не участвует в программе', en: 'The client is not in the program' },
};

/** The `error` return value: why the robot did nothing, in the portal's language. */
export function robotError(f: RobotFailure, lang: 'ru' | 'en'): string {
  switch (f.reason) {
    case 'invalid_property':
      return lang === 'ru' ? `Неверное значение свойства «${f.property}»` : `Invalid value of property "${f.property}"`;
    case 'missing_property':
      return lang === 'ru' ? `Не заполнено свойство «${f.property}»` : `Property "${f.property}" is required`;
    case 'refused':
      return lang === 'ru' ? `Sarafan отказал: ${f.message}` : `Sarafan refused: ${f.message}`;
    default:
      return TEXTS[f.reason][lang];
  }
}

/** The robot log line a person reads: what was done, or why not. */
export function robotLog(code: string, ok: boolean, detail: string, lang: 'ru' | 'en'): string {
  if (lang === 'ru') return ok ? `Sarafan (${code}): ${detail}` : `Sarafan (${code}): не выполнено — ${detail}`;
  return ok ? `Sarafan (${code}): ${detail}` : `Sarafan (${code}): not done — ${detail}`;
}

/** `percent` % of the deal's or lead's amount, in minor units (rounded half away from zero). */
export function percentOfDeal(amountMinor: number, percent: number): number {
  return percentOf(amountMinor, percent);
}
