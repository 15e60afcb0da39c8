/** The RFM rule (issue 12): each boundary of the default `rfm` key, a day (or a deal, a kopeck) either side. */
import { describe, expect, it } from 'vitest';
import { F, toWire } from '../../../src/bitrix/crm-fields.js';
import { DEFAULT_PROGRAM } from '../../../src/rules/program.js';
import { personProjection, projectionChanges } from '../../../src/rules/project-to-crm.js';
import { RFM_SEGMENTS, recencyDays, rfmBoundaries, segmentOf, segmentWrite, type RfmSegment } from '../../../src/rules/segment-clients.js';

// recentDays 30, sleepingDays 90, lostDays 365, loyalDeals 3, championAmount 100 000.00.
const B = rfmBoundaries(DEFAULT_PROGRAM.rfm);
const CHAMPION = 100_000_00;

describe('rfmBoundaries', () => {
  it('takes the champion amount in minor units', () => {
    expect(B).toEqual({ recentDays: 30, sleepingDays: 90, lostDays: 365, loyalDeals: 3, championAmountMinor: CHAMPION });
    expect(rfmBoundaries({ ...DEFAULT_PROGRAM.rfm, championAmount: 0.01 }).championAmountMinor).toBe(1);
  });
});

describe('segmentOf', () => {
  it.each<[string, number, number, number, RfmSegment]>([
    // [case, R days, F deals, M minor, segment]
    ['lost: a day past lostDays', 366, 1, 0, 'lost'],
    ['lost wins over loyal and champion', 366, 50, CHAMPION * 10, 'lost'],
    ['at lostDays a one-deal client only sleeps', 365, 1, 0, 'sleeping'],
    ['at lostDays a loyal client is at risk', 365, 3, 0, 'at_risk'],
    ['a day past sleepingDays: sleeping', 91, 2, CHAMPION, 'sleeping'],
    ['a day past sleepingDays, loyal: at risk', 91, 3, CHAMPION, 'at_risk'],
    ['at sleepingDays a loyal client with the champion amount is a champion', 90, 3, CHAMPION, 'champion'],
    ['at sleepingDays a loyal client below it is loyal', 90, 3, CHAMPION - 1, 'loyal'],
    ['at sleepingDays a two-deal client is promising', 90, 2, CHAMPION, 'promising'],
    ['at sleepingDays a one-deal client is promising (not new)', 90, 1, 0, 'promising'],
    ['champion: loyalDeals and the champion amount exactly', 0, 3, CHAMPION, 'champion'],
    ['a kopeck short of champion: loyal', 0, 3, CHAMPION - 1, 'loyal'],
    ['a deal short of loyal, with the champion amount: promising', 0, 2, CHAMPION * 3, 'promising'],
    ['new: one deal, won today', 0, 1, 100, 'new'],
    ['new: one deal, at recentDays', 30, 1, 100, 'new'],
    ['a day past recentDays, one deal: promising', 31, 1, 100, 'promising'],
    ['a two-deal client within recentDays is promising, not new', 29, 2, 100, 'promising'],
    ['a one-deal client whose amount could not be converted still ranks by R and F', 5, 1, 0, 'new'],
  ])('%s', (_case, recency, deals, amount, segment) => {
    expect(segmentOf({ recencyDays: recency, wonDeals: deals, wonAmount: amount }, B)).toBe(segment);
  });

  it('follows configured boundaries', () => {
    const b = rfmBoundaries({ recentDays: 7, sleepingDays: 14, lostDays: 28, loyalDeals: 2, championAmount: 500 });
    expect(segmentOf({ recencyDays: 7, wonDeals: 1, wonAmount: 0 }, b)).toBe('new');
    expect(segmentOf({ recencyDays: 8, wonDeals: 1, wonAmount: 0 }, b)).toBe('promising');
    expect(segmentOf({ recencyDays: 10, wonDeals: 2, wonAmount: 500_00 }, b)).toBe('champion');
    expect(segmentOf({ recencyDays: 15, wonDeals: 2, wonAmount: 500_00 }, b)).toBe('at_risk');
    expect(segmentOf({ recencyDays: 29, wonDeals: 9, wonAmount: 500_00 }, b)).toBe('lost');
  });

  it('names every segment of the list, best first', () => {
    expect(RFM_SEGMENTS).toEqual(['champion', 'loyal', 'promising', 'new', 'at_risk', 'sleeping', 'lost']);
  });
});

describe('recencyDays', () => {
  const now = new Date('2026-12-03T12:00:00Z');
  it.each<[string, string, number]>([
    ['won now', '2026-12-03T12:00:00Z', 0],
    ['a millisecond short of a day', '2026-12-02T12:00:00.001Z', 0],
    ['exactly a day', '2026-12-02T12:00:00Z', 1],
    ['30 days and a bit', '2026-11-03T11:00:00Z', 30],
    ['a win stamped in the future counts as today', '2026-12-04T00:00:00Z', 0],
  ])('%s', (_case, wonAt, days) => {
    expect(recencyDays(new Date(wonAt), now)).toBe(days);
  });
});

describe('segmentWrite', () => {
  it.each<[RfmSegment | null, RfmSegment | null, RfmSegment | null | undefined]>([
    ['loyal', null, 'loyal'],
    ['loyal', 'new', 'loyal'],
    ['loyal', 'loyal', undefined],
    [null, 'sleeping', null],
    [null, null, undefined],
  ])('segment %s, written %s → %s', (segment, written, write) => {
    expect(segmentWrite({ segment, written })).toBe(write);
  });
});

describe("the members' projection leaves the segment alone", () => {
  it('personProjection has no segment, so its changes never clear or overwrite UF_CRM_SARAFAN_SEGMENT', () => {
    const desired = personProjection({ code: 'ABC2345', link: 'https://x/r/p/ABC2345', balance: 0, pending: 0, referrals: 0, tier: null, joinedAt: null });
    expect(desired).not.toHaveProperty('segment');
    expect(toWire(desired)).not.toHaveProperty(F.SEGMENT);
    const shown = { ...desired, balance: 5_00, segment: 'champion' };
    expect(projectionChanges(desired, shown)).toEqual({ balance: 0 });
  });

  it('the segment job writes the field alone, and clears it with an empty value', () => {
    expect(toWire({ segment: 'at_risk' })).toEqual({ [F.SEGMENT]: 'at_risk' });
    expect(toWire({ segment: null })).toEqual({ [F.SEGMENT]: null });
  });
});
