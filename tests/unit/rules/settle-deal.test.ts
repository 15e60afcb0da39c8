import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DesiredEntry } from '../../../src/rules/price-deal.js';
import { settleDeal, type ExistingEntry, type PlannedEntry } from '../../../src/rules/settle-deal.js';
import { T0, at } from './rules-fixtures.js';

const DEAL = 5;
const want = (amount: number, availableAt = at(14), o: Partial<DesiredEntry> = {}): DesiredEntry => ({ memberId: 7, reason: 'referral', level: 1, amount, availableAt, ...o });
const had = (amount: number, n: number, availableAt = at(14), o: Partial<ExistingEntry> = {}): ExistingEntry => ({
  memberId: 7,
  reason: 'referral',
  level: 1,
  amount,
  availableAt,
  idempotencyKey: `deal:${DEAL}:referral:1:7:${n}`,
  ...o,
});
const plan = (amount: number, kind: PlannedEntry['kind'], n: number, availableAt: Date, o: Partial<PlannedEntry> = {}): PlannedEntry => ({
  memberId: 7,
  reason: 'referral',
  level: 1,
  amount,
  kind,
  availableAt,
  capped: 0,
  idempotencyKey: `deal:${DEAL}:referral:1:7:${n}`,
  ...o,
});

describe('settleDeal', () => {
  const now = at(1);
  it.each<[string, DesiredEntry[], ExistingEntry[], PlannedEntry[]]>([
    ['nothing desired, nothing there', [], [], []],
    ['a first credit, available when pricing said', [want(10000)], [], [plan(10000, 'credit', 0, at(14))]],
    ['an already credited slot', [want(10000)], [had(10000, 0)], []],
    ['a lost deal: reversal of a pending credit stays pending', [], [had(10000, 0, at(14))], [plan(-10000, 'reversal', 1, at(14))]],
    ['a lost deal: reversal of an available credit is available now', [], [had(10000, 0, at(0))], [plan(-10000, 'reversal', 1, now)]],
    ['an amount raised while won', [want(12000)], [had(10000, 0, at(0))], [plan(2000, 'correction', 1, now)]],
    ['an amount lowered while won', [want(8000)], [had(10000, 0, at(0))], [plan(-2000, 'correction', 1, now)]],
    ['won again after a reversal: a correction, not a second credit', [want(10000, at(20))], [had(10000, 0, at(0)), had(-10000, 1, at(0))], [plan(10000, 'correction', 2, now)]],
    ['won again while the reversal is still pending', [want(10000, at(20))], [had(10000, 0, at(14)), had(-10000, 1, at(14))], [plan(10000, 'correction', 2, at(14))]],
    ['an already reversed slot', [], [had(10000, 0), had(-10000, 1)], []],
    ['a slot at net zero is not credited again', [], [had(0, 0)], []],
    ['a desired amount of zero reverses', [want(0)], [had(10000, 0, at(0))], [plan(-10000, 'reversal', 1, now)]],
    // Monthly cap (cap-referrer-month.ts): the hold-back is recorded, a change of it alone as a zero entry.
    ['a capped first credit records what the cap held back', [{ ...want(6000), capped: 4000 } as DesiredEntry], [], [plan(6000, 'credit', 0, at(14), { capped: 4000 })]],
    ['a reward held back entirely is a zero credit, so the cap is visible', [{ ...want(0), capped: 10000 } as DesiredEntry], [], [plan(0, 'credit', 0, at(14), { capped: 10000 })]],
    ['the same capped slot again writes nothing', [{ ...want(6000), capped: 4000 } as DesiredEntry], [had(6000, 0, at(0), { capped: 4000 })], []],
    ['freed room pays the rest: a correction with the hold-back gone', [want(10000)], [had(6000, 0, at(0), { capped: 4000 })], [plan(4000, 'correction', 1, now)]],
    ['a hold-back that changes alone is a zero correction', [{ ...want(0), capped: 8000 } as DesiredEntry], [had(0, 0, at(0), { capped: 10000 })], [plan(0, 'correction', 1, now, { capped: 8000 })]],
    // Clamp overspend: a shortfall counts as taken back, so the reversed slot is settled.
    ['a clamped reversal with its shortfall settles the slot', [], [had(10000, 0, at(0)), had(-3000, 1, at(0), { shortfall: 7000 })], []],
    ['won again after a clamped reversal pays the reward again', [want(10000)], [had(10000, 0, at(0)), had(-3000, 1, at(0), { shortfall: 7000 })], [plan(10000, 'correction', 2, now)]],
    [
      'entries pricing does not own are left alone',
      [],
      [had(-500, 0, at(0), { reason: 'redemption', level: 0, idempotencyKey: 'redeem:1' }), had(300, 0, at(0), { reason: 'adjustment', level: 0, idempotencyKey: 'user:1' })],
      [],
    ],
    [
      'slots are told apart by member, reason and level',
      [want(100, at(14), { level: 2, memberId: 8 }), want(50, at(14), { reason: 'welcome', level: 0, memberId: 9 }), want(10, at(1), { reason: 'cashback', level: 0, memberId: 9 })],
      [had(100, 0, at(14), { level: 1, memberId: 8, idempotencyKey: 'x' })],
      [
        plan(10, 'credit', 0, at(1), { reason: 'cashback', level: 0, memberId: 9, idempotencyKey: `deal:${DEAL}:cashback:0:9:0` }),
        plan(-100, 'reversal', 1, at(14), { level: 1, memberId: 8, idempotencyKey: `deal:${DEAL}:referral:1:8:1` }),
        plan(100, 'credit', 0, at(14), { level: 2, memberId: 8, idempotencyKey: `deal:${DEAL}:referral:2:8:0` }),
        plan(50, 'credit', 0, at(14), { reason: 'welcome', level: 0, memberId: 9, idempotencyKey: `deal:${DEAL}:welcome:0:9:0` }),
      ],
    ],
  ])('%s', (_name, desired, existing, expected) => {
    expect(settleDeal({ dealId: DEAL, desired, existing, now })).toEqual(expected);
  });

  it('plans the same entries, in the same order, whatever the input order', () => {
    const desired = [want(1, T0, { memberId: 3 }), want(2, T0, { memberId: 1 }), want(3, T0, { reason: 'cashback', level: 0, memberId: 2 })];
    const existing = [had(5, 0, T0, { memberId: 4, idempotencyKey: 'a' }), had(5, 0, T0, { memberId: 1, idempotencyKey: 'b' })];
    const first = settleDeal({ dealId: DEAL, desired, existing, now: T0 });
    const second = settleDeal({ dealId: DEAL, desired: [...desired].reverse(), existing: [...existing].reverse(), now: T0 });
    expect(second).toEqual(first);
    expect(first.map((p) => p.idempotencyKey)).toEqual([...first.map((p) => p.idempotencyKey)].sort());
  });

  it('brings every slot to its desired net, with unique keys that the next round does not reuse', () => {
    const slot = fc.record({ memberId: fc.integer({ min: 1, max: 3 }), reason: fc.constantFrom('referral', 'welcome', 'cashback' as const), level: fc.integer({ min: 0, max: 2 }) });
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.record({ slot, amount: fc.integer({ min: 1, max: 10000 }) }), { selector: (d) => JSON.stringify(d.slot), maxLength: 6 }),
        fc.array(fc.record({ slot, amount: fc.integer({ min: -10000, max: 10000 }) }), { maxLength: 8 }),
        (wanted, old) => {
          const desired = wanted.map((d) => ({ ...d.slot, amount: d.amount, availableAt: T0 }));
          const counts = new Map<string, number>();
          const existing = old.map((e) => {
            const key = `${e.slot.reason}:${e.slot.level}:${e.slot.memberId}`;
            const n = counts.get(key) ?? 0;
            counts.set(key, n + 1);
            return { ...e.slot, amount: e.amount, availableAt: T0, idempotencyKey: `deal:${DEAL}:${key}:${n}` };
          });
          const planned = settleDeal({ dealId: DEAL, desired, existing, now: T0 });
          const keys = [...existing, ...planned].map((e) => e.idempotencyKey);
          expect(new Set(keys).size).toBe(keys.length);
          const after = [...existing, ...planned];
          const net = (s: { memberId: number; reason: string; level: number }) =>
            after.filter((e) => e.memberId === s.memberId && e.reason === s.reason && e.level === s.level).reduce((sum, e) => sum + e.amount, 0);
          for (const e of after) expect(net(e)).toBe(desired.find((d) => d.memberId === e.memberId && d.reason === e.reason && d.level === e.level)?.amount ?? 0);
          for (const d of desired) expect(net(d)).toBe(d.amount);
          expect(settleDeal({ dealId: DEAL, desired, existing: after, now: T0 })).toEqual([]);
          for (const p of planned) expect(p.amount).not.toBe(0);
        },
      ),
    );
  });
});
