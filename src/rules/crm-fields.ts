/**
 * The user fields of SPEC 4.1 and the values Sarafan projects into them. Projections are written
 * only when they differ from what the portal holds, compared the way Bitrix24 returns values:
 * doubles as strings ("10.00"), empties as '' / null / false, dates with a time and offset, and
 * crm-type fields as 'C_5' or a bare '5' when the field allows one entity type.
 */
import { fromMinor } from './money.js';

export const F = {
  CODE: 'UF_CRM_SARAFAN_CODE',
  LINK: 'UF_CRM_SARAFAN_LINK',
  BALANCE: 'UF_CRM_SARAFAN_BALANCE',
  PENDING: 'UF_CRM_SARAFAN_PENDING',
  REFERRALS: 'UF_CRM_SARAFAN_REFERRALS',
  TIER: 'UF_CRM_SARAFAN_TIER',
  JOINED: 'UF_CRM_SARAFAN_JOINED',
  REF_CODE: 'UF_CRM_SARAFAN_REF_CODE',
  REFERRER: 'UF_CRM_SARAFAN_REFERRER',
  SEGMENT: 'UF_CRM_SARAFAN_SEGMENT',
  REWARD: 'UF_CRM_SARAFAN_REWARD',
  REDEEMED: 'UF_CRM_SARAFAN_REDEEMED',
} as const;

export type FieldName = (typeof F)[keyof typeof F];

/** Fields on contacts and leads that Sarafan owns and overwrites (SPEC 4.1). */
export const PERSON_COMPUTED: readonly FieldName[] = Object.freeze([F.CODE, F.LINK, F.BALANCE, F.PENDING, F.REFERRALS, F.TIER, F.SEGMENT]);
/** Fields on deals that Sarafan owns and overwrites (SPEC 4.1). */
export const DEAL_COMPUTED: readonly FieldName[] = Object.freeze([F.REWARD, F.REDEEMED]);

export type CrmPersonEntity = 'contact' | 'lead';
export type ProjectionValue = string | number | null;

const ENTITY_PREFIX: Record<CrmPersonEntity, string> = { contact: 'C', lead: 'L' };

export function crmRef(entity: CrmPersonEntity, id: number): string {
  if (!Number.isSafeInteger(id) || id <= 0) throw new RangeError(`CRM id must be a positive integer, got ${id}`);
  return `${ENTITY_PREFIX[entity]}_${id}`;
}

function positiveId(text: string): number | null {
  const id = Number(text);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

/**
 * Reads a crm-type field value. A field bound to contacts only holds a bare id ('5' or 5), which
 * is a contact; a multiple field holds an array, of which the first is taken.
 */
export function parseCrmRef(value: unknown): { entity: CrmPersonEntity; id: number } | null {
  if (Array.isArray(value)) return value.length ? parseCrmRef(value[0]) : null;
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? { entity: 'contact', id: value } : null;
  if (typeof value !== 'string') return null;
  const text = value.trim();
  const prefixed = /^([CL])_(\d+)$/.exec(text);
  if (prefixed) {
    const id = positiveId(prefixed[2] ?? '');
    return id === null ? null : { entity: prefixed[1] === 'L' ? 'lead' : 'contact', id };
  }
  if (/^\d+$/.test(text)) {
    const id = positiveId(text);
    return id === null ? null : { entity: 'contact', id };
  }
  return null;
}

function isoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export function personProjection(p: {
  code: string | null;
  link: string | null;
  balance: number;
  pending: number;
  referrals: number;
  tier: string | null;
  joinedAt: Date | null;
}): Record<string, ProjectionValue> {
  return {
    [F.CODE]: p.code,
    // A link without a code would send people to a code that does not exist.
    [F.LINK]: p.code === null ? null : p.link,
    [F.BALANCE]: fromMinor(p.balance),
    [F.PENDING]: fromMinor(p.pending),
    [F.REFERRALS]: p.referrals,
    [F.TIER]: p.tier,
    [F.JOINED]: p.joinedAt ? isoDate(p.joinedAt) : null,
  };
}

export function dealProjection(d: { referrer: { entity: CrmPersonEntity; id: number } | null; reward: number }): Record<string, ProjectionValue> {
  return {
    [F.REFERRER]: d.referrer ? crmRef(d.referrer.entity, d.referrer.id) : null,
    [F.REWARD]: fromMinor(d.reward),
  };
}

function isEmpty(value: unknown): boolean {
  return value === null || value === undefined || value === '' || value === false;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

function sameValue(key: string, want: ProjectionValue, raw: unknown): boolean {
  const have = Array.isArray(raw) ? raw[0] : raw;
  if (want === null || want === '') return isEmpty(have);
  if (key === F.REFERRER) {
    const a = parseCrmRef(want);
    const b = parseCrmRef(have);
    return a !== null && b !== null && a.entity === b.entity && a.id === b.id;
  }
  if (typeof want === 'number') {
    if (typeof have === 'number') return have === want;
    if (typeof have !== 'string' || have.trim() === '') return false;
    return Number(have.trim()) === want;
  }
  if (typeof have !== 'string' && typeof have !== 'number') return false;
  const text = String(have);
  // Bitrix24 returns a date field as '2026-11-23T00:00:00+03:00': the day is what was written.
  if (DATE_ONLY.test(want)) return text.slice(0, 10) === want;
  return text === want;
}

/** The desired values that differ from the portal's current ones; an unknown current is all empty. */
export function changedFields(
  desired: Record<string, ProjectionValue>,
  current: Record<string, unknown> | null | undefined,
): Record<string, ProjectionValue> {
  const changed: Record<string, ProjectionValue> = {};
  for (const [key, want] of Object.entries(desired)) {
    if (!sameValue(key, want, current?.[key])) changed[key] = want;
  }
  return changed;
}
