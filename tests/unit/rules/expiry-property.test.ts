/**
 * Properties of bonus expiry over an in-memory ledger whose only guarantee is the store's (an
 * entry with a known idempotency key is dropped), driven the way the hourly job and the API
 * drive it: credits (referral rewards, promo activations) and spends at random instants, the job
 * run at random instants. The balance is always the sum of the ledger's available entries, and:
 * - it never goes negative when nobody spends more than that balance;
 * - once every credit has expired and the job has run, it is exactly zero (all bonus was either
 *   spent or expired, nothing twice);
 * - when and how often the job runs does not change what expires.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY_MS, decideExpiry, expiresAtFor, lotOfExpiryKey, type ExpiryEntry } from '../../../src/rules/expiry.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const DAYS = 30;

type Op = { type: 'credit'; reason: 'referral' | 'promo'; amount: number; holdDays: number } | { type: 'spend'; share: number } | { type: 'job' };

const opArb: fc.Arbitrary<{ afterHours: number; op: Op }> = fc.record({
  afterHours: fc.integer({ min: 0, max: 24 * 20 }),
  op: fc.oneof(
    fc.record({ type: fc.constant('credit' as const), reason: fc.constantFrom('referral' as const, 'promo' as const), amount: fc.integer({ min: 1, max: 100_000 }), holdDays: fc.constantFrom(0, 0, 3) }),
    fc.record({ type: fc.constant('spend' as const), share: fc.double({ min: 0, max: 1, noNaN: true }) }),
    fc.constant({ type: 'job' as const }),
  ),
});

class Ledger {
  entries: ExpiryEntry[] = [];
  private keys = new Set<string>();
  private nextId = 1;
  append(e: Omit<ExpiryEntry, 'id'>): void {
    if (this.keys.has(e.idempotencyKey)) return;
    this.keys.add(e.idempotencyKey);
    this.entries.push({ ...e, id: this.nextId++ });
  }
  balance(at: number): number {
    return this.entries.filter((e) => e.availableAt.getTime() <= at).reduce((s, e) => s + e.amount, 0);
  }
  runJob(at: number): void {
    for (const d of decideExpiry(this.entries, new Date(at)).due) {
      this.append({ amount: d.amount, reason: 'expiry', dealId: null, level: 0, idempotencyKey: d.idempotencyKey, availableAt: d.at, expiresAt: null });
    }
  }
}

/** Plays the ops; the job runs before every spend (as the hourly job would have by then, at most an hour late). */
function play(ops: { afterHours: number; op: Op }[], extraJobs: boolean): { ledger: Ledger; end: number; minBalance: number } {
  const ledger = new Ledger();
  let t = T0;
  let minBalance = 0;
  let n = 0;
  for (const { afterHours, op } of ops) {
    t += afterHours * 3_600_000;
    n++;
    if (op.type === 'credit') {
      const availableAt = new Date(t + op.holdDays * DAY_MS);
      ledger.append({ amount: op.amount, reason: op.reason, dealId: null, level: 0, idempotencyKey: `${op.reason}:${n}`, availableAt, expiresAt: expiresAtFor(availableAt, DAYS) });
    } else if (op.type === 'spend') {
      ledger.runJob(t);
      const available = ledger.balance(t);
      const amount = Math.floor(available * op.share);
      if (amount > 0) ledger.append({ amount: -amount, reason: 'redemption', dealId: null, level: 0, idempotencyKey: `spend:${n}`, availableAt: new Date(t), expiresAt: null });
    } else if (extraJobs) {
      ledger.runJob(t);
    }
    minBalance = Math.min(minBalance, ledger.balance(t));
  }
  const end = t + (DAYS + 4) * DAY_MS;
  ledger.runJob(end);
  return { ledger, end, minBalance };
}

describe('bonus expiry: balance = sum of the ledger', () => {
  it('never negative, zero once everything expired, and the same whenever the job runs', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const often = play(ops, true);
        const rarely = play(ops, false);
        expect(often.minBalance).toBeGreaterThanOrEqual(0);
        expect(often.ledger.balance(often.end)).toBe(0);
        // A second run at the end writes nothing.
        expect(decideExpiry(often.ledger.entries, new Date(often.end)).due).toEqual([]);
        // Entry ids differ between the two plays (expiries are appended at other moments): name each lot by its own key.
        const expiries = (l: Ledger) => {
          const keyOf = new Map(l.entries.map((e) => [e.id, e.idempotencyKey]));
          return l.entries
            .filter((e) => e.reason === 'expiry')
            .map((e) => `${keyOf.get(lotOfExpiryKey(e.idempotencyKey)!)}=${e.amount}@${e.availableAt.toISOString()}`)
            .sort();
        };
        expect(expiries(often.ledger)).toEqual(expiries(rarely.ledger));
        for (const e of often.ledger.entries) if (e.reason === 'expiry') expect(e.amount).toBeLessThan(0);
      }),
      { numRuns: 300 },
    );
  });
});
