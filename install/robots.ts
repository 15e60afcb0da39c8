/**
 * Sarafan's automation robots (SPEC 4.4), declared as data. Registration (src/bitrix/reconcile.ts)
 * adds them with `bizproc.robot.add` and updates them when this file changes, so editing a robot
 * here is how a new version changes it on every portal.
 *
 * Property keys are the names the portal posts back (`properties[amount]`) and the return keys
 * are what later robots read (`{=A123_sarafan_accrue:balance}`): renaming one breaks the
 * automation rules admins already built, so keys only ever get added.
 */
import type { LangText, RobotPropertySpec, RobotPropertyType, RobotSpec } from '../src/bitrix/manifest-types.js';

/** Robots exist for deals and leads only (reference §8.1: not contacts or companies). */
const DEALS_AND_LEADS: RobotSpec['filter'] = {
  INCLUDE: [
    ['crm', 'CCrmDocumentDeal'],
    ['crm', 'CCrmDocumentLead'],
  ],
};

function prop(type: RobotPropertyType, ru: string, en: string, description: LangText, required = false): RobotPropertySpec {
  return { Name: { ru, en }, Description: { ...description }, Type: type, Required: required ? 'Y' : 'N', Multiple: 'N' };
}

const OK = prop('bool', 'Успешно', 'Succeeded', { ru: 'Y, если действие выполнено', en: 'Y when the action was done' });
const ERROR = prop('string', 'Ошибка', 'Error', {
  ru: 'Почему действие не выполнено (пусто при успехе)',
  en: 'Why the action was not done (empty on success)',
});
const BALANCE = prop('double', 'Доступные бонусы', 'Available bonus', {
  ru: 'Баланс клиента после действия',
  en: "The client's balance after the action",
});
const CODE = prop('string', 'Реферальный код', 'Referral code', { ru: 'Код клиента в программе', en: "The client's code in the program" });
const LINK = prop('string', 'Реферальная ссылка', 'Referral link', { ru: 'Ссылка для приглашения друзей', en: 'The link to invite friends' });

interface RobotDecl {
  code: string;
  name: LangText;
  description: LangText;
  properties: Record<string, RobotPropertySpec>;
  returnProperties: Record<string, RobotPropertySpec>;
}

const ROBOTS: RobotDecl[] = [
  {
    code: 'sarafan_accrue',
    name: { ru: 'Сарафан: начислить бонусы', en: 'Sarafan: accrue bonus' },
    description: {
      ru: 'Начисляет бонусы клиенту сделки или лида: суммой или процентом от суммы сделки',
      en: "Credits bonus to the deal's or lead's client: a fixed amount or a percent of the deal amount",
    },
    properties: {
      amount: prop('double', 'Сумма бонусов', 'Bonus amount', {
        ru: 'Сколько начислить; пусто, если задан процент',
        en: 'How much to credit; empty when a percent is set',
      }),
      percent: prop('double', 'Процент от суммы', 'Percent of the amount', {
        ru: 'Процент от суммы сделки; пусто, если задана сумма',
        en: 'Percent of the deal amount; empty when an amount is set',
      }),
      comment: prop('string', 'Комментарий', 'Comment', { ru: 'Причина начисления для истории', en: 'Why, for the history' }),
    },
    returnProperties: {
      accrued: prop('double', 'Начислено', 'Accrued', { ru: 'Сколько бонусов начислено', en: 'How much bonus was credited' }),
      balance: BALANCE,
      entry_id: prop('int', 'Номер операции', 'Entry id', { ru: 'Номер записи в журнале бонусов', en: 'The bonus ledger entry' }),
      ok: OK,
      error: ERROR,
    },
  },
  {
    code: 'sarafan_redeem',
    name: { ru: 'Сарафан: списать бонусы', en: 'Sarafan: redeem bonus' },
    description: {
      ru: 'Списывает бонусы клиента в оплату сделки в пределах правил программы',
      en: "Redeems the client's bonus against the deal within the program's limits",
    },
    properties: {
      amount: prop('double', 'Сумма списания', 'Amount to redeem', {
        ru: 'Сколько списать; пусто — максимум, который разрешает программа',
        en: 'How much to redeem; empty = the most the program allows',
      }),
    },
    returnProperties: {
      redeemed: prop('double', 'Списано', 'Redeemed', { ru: 'Сколько бонусов списано', en: 'How much bonus was redeemed' }),
      balance: BALANCE,
      ok: OK,
      error: ERROR,
    },
  },
  {
    code: 'sarafan_status',
    name: { ru: 'Сарафан: статус клиента', en: "Sarafan: client's status" },
    description: {
      ru: 'Возвращает код, ссылку, баланс, уровень и число приглашённых клиента сделки или лида',
      en: "Returns the code, link, balance, tier and referrals of the deal's or lead's client",
    },
    properties: {},
    returnProperties: {
      code: CODE,
      link: LINK,
      balance: BALANCE,
      pending: prop('double', 'Бонусы в ожидании', 'Pending bonus', { ru: 'Ещё не доступные бонусы', en: 'Bonus not available yet' }),
      tier: prop('string', 'Уровень', 'Tier', { ru: 'Уровень лояльности клиента', en: "The client's loyalty tier" }),
      referrals: prop('int', 'Приведено клиентов', 'Referrals brought', {
        ru: 'Сколько клиентов привёл',
        en: 'How many clients they brought',
      }),
      ok: OK,
      error: ERROR,
    },
  },
  {
    code: 'sarafan_enroll',
    name: { ru: 'Сарафан: включить в программу', en: 'Sarafan: enrol in the program' },
    description: {
      ru: 'Включает клиента сделки или лида в реферальную программу и возвращает его код и ссылку',
      en: "Enrols the deal's or lead's client in the referral program and returns the code and link",
    },
    properties: {},
    returnProperties: { code: CODE, link: LINK, ok: OK, error: ERROR },
  },
  {
    code: 'sarafan_promo',
    name: { ru: 'Сарафан: применить промокод', en: 'Sarafan: apply a promo code' },
    description: {
      ru: 'Начисляет клиенту бонусы по промокоду',
      en: 'Credits the client with the bonus of a promo code',
    },
    properties: {
      code: prop('string', 'Промокод', 'Promo code', { ru: 'Код, который ввёл клиент', en: 'The code the client typed' }, true),
    },
    returnProperties: {
      ok: OK,
      accrued: prop('double', 'Начислено', 'Accrued', { ru: 'Сколько бонусов начислено', en: 'How much bonus was credited' }),
      balance: BALANCE,
      error: ERROR,
    },
  },
];

/** The five robots with their handler URLs on this deployment: `${base}/b24/robots/<code>`. */
export function buildRobots(appBaseUrl: string): RobotSpec[] {
  const base = appBaseUrl.replace(/\/+$/, '');
  return ROBOTS.map((r) => ({
    code: r.code,
    handler: `${base}/b24/robots/${r.code}`,
    useSubscription: 'Y',
    name: { ...r.name },
    description: { ...r.description },
    properties: structuredClone(r.properties),
    returnProperties: structuredClone(r.returnProperties),
    filter: structuredClone(DEALS_AND_LEADS),
  }));
}
