import { describe, expect, it } from 'vitest';
import { entryStatuses, type StatusEntry } from '../../../src/rules/ledger-status.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const DAY = 86_400_000;
const days = (n: number) => new Date(NOW.getTime() + n * DAY);

let nextId = 1;
const e = (o: Partial<StatusEntry>): StatusEntry => ({
  id: nextId++,
  memberId: 7,
  dealId: 5,
  reason: 'referral',
  level: 1,
  kind: 'credit',
  amount: 100,
  availableAt: days(-1),
  expiresAt: null,
  ...o,
});

describe('entryStatuses of coupons', () => {
  it('reads a coupon credit as reversed when its reversal names another deal', () => {
    const credit = e({ reason: 'coupon', dealId: 5, level: 1, amount: 500 });
    const reversal = e({ reason: 'coupon', dealId: 6, level: 1, amount: -500, kind: 'reversal' });
    const other = e({ reason: 'coupon', dealId: 5, level: 2, amount: 500 });
    const statuses = entryStatuses([credit, reversal, other], [], NOW);
    expect([statuses.get(credit.id), statuses.get(reversal.id), statuses.get(other.id)]).toEqual(['reversed', 'reversed', 'available']);
  });
});

describe('entryStatuses', () => {
  it.each([
    ['available once availableAt has passed', e({ availableAt: NOW }), 'available'],
    ['pending before availableAt', e({ availableAt: days(3) }), 'pending'],
    ['expired from expiresAt on', e({ expiresAt: NOW }), 'expired'],
    ['available before expiresAt', e({ expiresAt: days(1) }), 'available'],
    ['an adjustment without a deal', e({ dealId: null, reason: 'adjustment', amount: -50 }), 'available'],
  ])('%s', (_name, entry, status) => {
    expect(entryStatuses([entry], [], NOW).get(entry.id)).toBe(status);
  });

  it('a credit whose deal slot nets to zero is reversed, and so is the reversal', () => {
    const credit = e({ amount: 1000 });
    const reversal = e({ kind: 'reversal', amount: -1000 });
    const statuses = entryStatuses([credit, reversal], [credit, reversal], NOW);
    expect([statuses.get(credit.id), statuses.get(reversal.id)]).toEqual(['reversed', 'reversed']);
    // Only the page's entries are answered, but the slot is read from all of them.
    expect(entryStatuses([credit], [credit, reversal], NOW)).toEqual(new Map([[credit.id, 'reversed']]));
  });

  it('won, lost and won again: the slot pays, so the credit and correction stand', () => {
    const credit = e({ amount: 1000 });
    const reversal = e({ kind: 'reversal', amount: -1000 });
    const correction = e({ kind: 'correction', amount: 1000, availableAt: days(2) });
    const all = [credit, reversal, correction];
    expect([...entryStatuses(all, all, NOW).values()]).toEqual(['available', 'reversed', 'pending']);
  });

  it('slots are (deal, member, reason, level): another slot netting to zero changes nothing', () => {
    const credit = e({ amount: 1000 });
    const otherLevel = [e({ level: 2, amount: 300 }), e({ level: 2, kind: 'reversal', amount: -300 })];
    const otherMember = [e({ memberId: 8, amount: 300 }), e({ memberId: 8, kind: 'reversal', amount: -300 })];
    const otherDeal = [e({ dealId: 6, amount: 300 }), e({ dealId: 6, kind: 'reversal', amount: -300 })];
    const all = [credit, ...otherLevel, ...otherMember, ...otherDeal];
    expect(entryStatuses([credit], all, NOW).get(credit.id)).toBe('available');
  });
});
