/**
 * What an install registers on a portal (SPEC 4.1–4.4), declared as data. Registration
 * (src/bitrix/reconcile.ts) compares this with what the portal reports and applies only the
 * difference, so editing this file is how a new version changes what is registered.
 */
import type {
  EventBindingSpec,
  Manifest,
  PlacementSpec,
  UserFieldEntity,
  UserFieldSpec,
  UserFieldType,
} from '../src/bitrix/manifest-types.js';
import { F } from '../src/bitrix/crm-fields.js';
import { buildRobots } from './robots.js';


interface FieldDecl {
  name: string;
  type: UserFieldType;
  /** Sarafan writes it from its ledger (SPEC 4.1): users should not edit it in the list. */
  computed: boolean;
  ru: string;
  en: string;
}

/** Amounts cross every boundary with two decimals (SPEC 3). */
const MONEY_SETTINGS = { PRECISION: 2 };
/** Who referred: a contact or a lead, never a company or a deal (reference §6). */
const REFERRER_SETTINGS = { LEAD: 'Y', CONTACT: 'Y', COMPANY: 'N', DEAL: 'N' };

/** On contacts and on leads: the person in the program. */
const PERSON_FIELDS: FieldDecl[] = [
  { name: F.CODE, type: 'string', computed: true, ru: 'Сарафан: реферальный код', en: 'Sarafan: referral code' },
  { name: F.LINK, type: 'url', computed: true, ru: 'Сарафан: реферальная ссылка', en: 'Sarafan: referral link' },
  { name: F.BALANCE, type: 'double', computed: true, ru: 'Сарафан: доступные бонусы', en: 'Sarafan: available bonus' },
  { name: F.PENDING, type: 'double', computed: true, ru: 'Сарафан: бонусы в ожидании', en: 'Sarafan: pending bonus' },
  { name: F.REFERRALS, type: 'integer', computed: true, ru: 'Сарафан: приведено клиентов', en: 'Sarafan: referrals brought' },
  { name: F.TIER, type: 'string', computed: true, ru: 'Сарафан: уровень лояльности', en: 'Sarafan: loyalty tier' },
  { name: F.JOINED, type: 'date', computed: true, ru: 'Сарафан: дата вступления', en: 'Sarafan: joined on' },
  { name: F.REF_CODE, type: 'string', computed: false, ru: 'Сарафан: код пригласившего', en: "Sarafan: referrer's code" },
  { name: F.REFERRER, type: 'crm', computed: false, ru: 'Сарафан: кто порекомендовал', en: 'Sarafan: referred by' },
  { name: F.SEGMENT, type: 'string', computed: true, ru: 'Сарафан: RFM-сегмент', en: 'Sarafan: RFM segment' },
];

const DEAL_FIELDS: FieldDecl[] = [
  { name: F.REF_CODE, type: 'string', computed: false, ru: 'Сарафан: код пригласившего', en: "Sarafan: referrer's code" },
  { name: F.REFERRER, type: 'crm', computed: false, ru: 'Сарафан: кто порекомендовал', en: 'Sarafan: referred by' },
  { name: F.REWARD, type: 'double', computed: true, ru: 'Сарафан: начислено бонусов', en: 'Sarafan: bonus credited' },
  { name: F.REDEEMED, type: 'double', computed: true, ru: 'Сарафан: списано бонусов', en: 'Sarafan: bonus redeemed' },
];

/** Our fields sit together in the card, after the portal's own (default SORT is 100). */
const FIRST_SORT = 1000;
const SORT_STEP = 10;

/** ONAPPINSTALL too: the application token then arrives even if the app card has no install handler URL (reference §1.5). */
const EVENTS = [
  'ONAPPINSTALL',
  'ONAPPUPDATE',
  'ONAPPUNINSTALL',
  'ONCRMDEALADD',
  'ONCRMDEALUPDATE',
  'ONCRMDEALDELETE',
  'ONCRMLEADADD',
  'ONCRMLEADUPDATE',
  'ONCRMCONTACTADD',
  'ONCRMCONTACTUPDATE',
];

const PLACEMENTS = ['CRM_DEAL_DETAIL_TAB', 'CRM_CONTACT_DETAIL_TAB', 'CRM_LEAD_DETAIL_TAB'];

const PLACEMENT_TEXT = {
  ru: { TITLE: 'Сарафан', DESCRIPTION: 'Реферальная программа и бонусы клиента' },
  en: { TITLE: 'Sarafan', DESCRIPTION: "The client's referrals and bonus" },
};

function settingsOf(type: UserFieldType): Record<string, unknown> {
  if (type === 'double') return { ...MONEY_SETTINGS };
  if (type === 'crm') return { ...REFERRER_SETTINGS };
  return {};
}

function fieldsOf(entity: UserFieldEntity, decls: FieldDecl[]): UserFieldSpec[] {
  return decls.map((d, i) => ({
    entity,
    fieldName: d.name,
    userTypeId: d.type,
    xmlId: d.name.toLowerCase(),
    labels: { ru: d.ru, en: d.en },
    settings: settingsOf(d.type),
    editInList: d.computed ? 'N' : 'Y',
    sort: FIRST_SORT + i * SORT_STEP,
  }));
}

export function buildManifest(appBaseUrl: string): Manifest {
  const base = appBaseUrl.replace(/\/+$/, '');
  const eventsUrl = `${base}/b24/events`;
  const frameUrl = `${base}/b24/frame`;
  const events: EventBindingSpec[] = EVENTS.map((event) => ({ event, handler: eventsUrl }));
  const placements: PlacementSpec[] = PLACEMENTS.map((placement) => ({
    placement,
    handler: frameUrl,
    title: PLACEMENT_TEXT.en.TITLE,
    langAll: { ru: { ...PLACEMENT_TEXT.ru }, en: { ...PLACEMENT_TEXT.en } },
  }));
  return {
    userFields: [...fieldsOf('contact', PERSON_FIELDS), ...fieldsOf('lead', PERSON_FIELDS), ...fieldsOf('deal', DEAL_FIELDS)],
    events,
    placements,
    robots: buildRobots(base),
  };
}
