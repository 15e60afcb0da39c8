/**
 * What Sarafan shows in the CRM (SPEC 4.1), in domain terms: amounts in minor units, dates as
 * calendar days, people as references. The wire format of each field (UF names, "10.00",
 * `C_5`, dates with offsets) is the CRM adapter's business (src/bitrix/crm-fields.ts).
 *
 * Projections are absolute values, written only where they differ from what the entity shows
 * (when it was just read) or from what Sarafan last wrote — so the events Sarafan's own writes
 * cause end with no further write.
 */
import type { PersonRef } from './attribute-referral.js';

export interface Projection {
  code?: string | null;
  link?: string | null;
  /** Minor units. */
  balance?: number | null;
  pending?: number | null;
  referrals?: number | null;
  tier?: string | null;
  /** YYYY-MM-DD. */
  joined?: string | null;
  referrer?: PersonRef | null;
  /** Minor units. */
  reward?: number | null;
  /** Minor units: bonus redeemed against the deal, net of what was returned. */
  redeemed?: number | null;
  /**
   * RFM segment id (src/rules/segment-clients.ts). Only the nightly `segments.rfm` job writes
   * it; personProjection never has the key, so a member's projection never clears it.
   */
  segment?: string | null;
}

export type ProjectionKey = keyof Projection;

export interface MemberFacts {
  code: string | null;
  link: string | null;
  balance: number;
  pending: number;
  referrals: number;
  tier: string | null;
  joinedAt: Date | null;
}

export function personProjection(p: MemberFacts): Projection {
  return {
    code: p.code,
    // A link without a code would send people to a code that does not exist.
    link: p.code === null ? null : p.link,
    balance: p.balance,
    pending: p.pending,
    referrals: p.referrals,
    tier: p.tier,
    joined: p.joinedAt ? p.joinedAt.toISOString().slice(0, 10) : null,
  };
}

/** `redeemed` only when given: a deal no bonus was ever redeemed on keeps its field untouched. */
export function dealProjection(d: { referrer: PersonRef | null; reward: number; redeemed?: number }): Projection {
  return d.redeemed === undefined ? { referrer: d.referrer, reward: d.reward } : { referrer: d.referrer, reward: d.reward, redeemed: d.redeemed };
}

function same(want: Projection[ProjectionKey], have: Projection[ProjectionKey]): boolean {
  if (want === null || want === undefined || want === '') return have === null || have === undefined || have === '';
  if (typeof want === 'object') {
    return typeof have === 'object' && have !== null && have.entity === want.entity && have.id === want.id;
  }
  return want === have;
}

/** The desired values that differ from the shown ones; a value not shown counts as empty. */
export function projectionChanges(desired: Projection, shown: Projection | null | undefined): Projection {
  const changed: Record<string, unknown> = {};
  for (const [key, want] of Object.entries(desired) as [ProjectionKey, Projection[ProjectionKey]][]) {
    if (!same(want, shown?.[key])) changed[key] = want;
  }
  return changed as Projection;
}

export function isEmptyProjection(p: Projection): boolean {
  return Object.keys(p).length === 0;
}
