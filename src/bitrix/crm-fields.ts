/**
 * The user fields of SPEC 4.1 on the wire: their names, and how Bitrix24 writes and returns their
 * values — doubles as strings ("10.00"), empties as '' / null / false, dates with a time and an
 * offset, crm-type fields as 'C_5' or a bare '5' when the field allows one entity type
 * (reference §5.2, §6). Use cases see the domain form (src/rules/project-to-crm.ts) only.
 */
import { fromMinor, toMinor } from '../rules/money.js';
import type { PersonRef } from '../rules/attribute-referral.js';
import type { Projection, ProjectionKey } from '../rules/project-to-crm.js';

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

export type WireValue = string | number | null;

/** Which user field carries each projected value. */
const FIELD_OF: Record<ProjectionKey, FieldName> = {
  code: F.CODE,
  link: F.LINK,
  balance: F.BALANCE,
  pending: F.PENDING,
  referrals: F.REFERRALS,
  tier: F.TIER,
  joined: F.JOINED,
  referrer: F.REFERRER,
  reward: F.REWARD,
  redeemed: F.REDEEMED,
  segment: F.SEGMENT,
};

const ENTITY_PREFIX: Record<PersonRef['entity'], string> = { contact: 'C', lead: 'L' };

export function crmRef(entity: PersonRef['entity'], id: number): string {
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
export function parseCrmRef(value: unknown): PersonRef | null {
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

/** A text value as Bitrix24 returns it: a multiple field's first value, '' / false / null as empty. */
export function wireText(value: unknown): string | null {
  if (Array.isArray(value)) return wireText(value[0]);
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  const s = String(value).trim();
  return s === '' ? null : s;
}

/** The fields to send for projected values (absolute values, SPEC 4.1). */
export function toWire(p: Projection): Record<string, WireValue> {
  const out: Record<string, WireValue> = {};
  for (const [key, value] of Object.entries(p) as [ProjectionKey, Projection[ProjectionKey]][]) {
    const field = FIELD_OF[key];
    if (value === null || value === undefined) out[field] = null;
    else if (key === 'referrer') out[field] = crmRef((value as PersonRef).entity, (value as PersonRef).id);
    else if (key === 'balance' || key === 'pending' || key === 'reward' || key === 'redeemed') out[field] = fromMinor(value as number);
    else out[field] = value as string | number;
  }
  return out;
}

/** What an entity read from the portal shows in Sarafan's fields, in domain form (empty → null). */
export function shownProjection(raw: Record<string, unknown>): Projection {
  const money = (field: FieldName): number | null => {
    const t = wireText(raw[field]);
    return t === null ? null : toMinor(t);
  };
  const int = (field: FieldName): number | null => {
    const t = wireText(raw[field]);
    return t === null || !/^-?\d+(\.0+)?$/.test(t) ? null : Number.parseInt(t, 10);
  };
  // Bitrix24 returns a date field as '2026-11-23T00:00:00+03:00': the day is what was written.
  const joined = wireText(raw[F.JOINED]);
  return {
    code: wireText(raw[F.CODE]),
    link: wireText(raw[F.LINK]),
    balance: money(F.BALANCE),
    pending: money(F.PENDING),
    referrals: int(F.REFERRALS),
    tier: wireText(raw[F.TIER]),
    joined: joined === null ? null : joined.slice(0, 10),
    referrer: parseCrmRef(raw[F.REFERRER]),
    reward: money(F.REWARD),
    redeemed: money(F.REDEEMED),
  };
}
