/**
 * RFM segments (SPEC 8; issue 12): each client with at least one won deal is ranked by recency
 * (whole days since the last won deal), frequency (won deals) and monetary value (won amount in
 * the program currency, minor units), against the boundaries of the program's `rfm` key.
 *
 *   R > lostDays                      → lost
 *   R > sleepingDays                  → at_risk when F ≥ loyalDeals, else sleeping
 *   otherwise (active):  F ≥ loyalDeals and M ≥ championAmount → champion
 *                        F ≥ loyalDeals                        → loyal
 *                        F = 1 and R ≤ recentDays              → new
 *                        else                                  → promising
 *
 * The ids are what the nightly job writes to UF_CRM_SARAFAN_SEGMENT, so the portal's own robots
 * and mailings can filter on them: they are part of the contract and never translated.
 */
import { toMinor } from './money.js';

/** Best first. src/contract/admin.ts re-exports this list for the API and the client. */
export const RFM_SEGMENTS = ['champion', 'loyal', 'promising', 'new', 'at_risk', 'sleeping', 'lost'] as const;
export type RfmSegment = (typeof RFM_SEGMENTS)[number];

/** The program's `rfm` key, as the document holds it (championAmount a decimal in the program currency). */
export interface RfmBoundaryDoc {
  recentDays: number;
  sleepingDays: number;
  lostDays: number;
  loyalDeals: number;
  championAmount: number;
}

/** The boundaries the rule compares with: championAmount in minor units. */
export interface RfmBoundaries {
  recentDays: number;
  sleepingDays: number;
  lostDays: number;
  loyalDeals: number;
  championAmountMinor: number;
}

export function rfmBoundaries(doc: RfmBoundaryDoc): RfmBoundaries {
  const champion = toMinor(doc.championAmount);
  if (champion === null) throw new RangeError(`rfm.championAmount is not an amount: ${doc.championAmount}`);
  return { recentDays: doc.recentDays, sleepingDays: doc.sleepingDays, lostDays: doc.lostDays, loyalDeals: doc.loyalDeals, championAmountMinor: champion };
}

const DAY_MS = 86_400_000;

/**
 * Whole days from `lastWonAt` to `now` (a deal won 23 h ago is 0 days old, 24 h ago 1 day). A win
 * stamped after `now` (the portal's clock ahead of ours) counts as today, never as negative.
 */
export function recencyDays(lastWonAt: Date, now: Date): number {
  return Math.max(0, Math.floor((now.getTime() - lastWonAt.getTime()) / DAY_MS));
}

export interface ClientRfm {
  /** R: whole days since the last won deal. */
  recencyDays: number;
  /** F: won deals (at least 1). */
  wonDeals: number;
  /** M: won amount, minor units of the program currency (deals that could not be converted left out). */
  wonAmount: number;
}

export function segmentOf(c: ClientRfm, b: RfmBoundaries): RfmSegment {
  const loyal = c.wonDeals >= b.loyalDeals;
  if (c.recencyDays > b.lostDays) return 'lost';
  if (c.recencyDays > b.sleepingDays) return loyal ? 'at_risk' : 'sleeping';
  if (loyal) return c.wonAmount >= b.championAmountMinor ? 'champion' : 'loyal';
  if (c.wonDeals === 1 && c.recencyDays <= b.recentDays) return 'new';
  return 'promising';
}

/** What a person last had written to the CRM and what they should show now (null = no segment). */
export interface SegmentState {
  segment: RfmSegment | null;
  written: RfmSegment | null;
}

/**
 * The value to write, or undefined when the CRM already shows the segment. A person who is no
 * longer a client (their won deals deleted or lost) gets the field cleared once: null is written
 * only where a segment was written before.
 */
export function segmentWrite(s: SegmentState): RfmSegment | null | undefined {
  return s.segment === s.written ? undefined : s.segment;
}
