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

type Op =
  | { type: 'credit'; reason: 'referral' | 'promo'; amount: number; holdDays: number }
  | { type: 'spend'; share: number }
  | { type: 'reverse'; pick: number }
  | { type: 'job' };

const opArb: fc.Arbitrary<{ afterHours: number; op: Op }> = fc.record({
  afterHours: fc.integer({ min: 0, max: 24 * 20 }),
  op: fc.oneof(
    fc.record({ type: fc.constant('credit' as const), reason: fc.constantFrom('referral' as const, 'promo' as const), amount: fc.integer({ min: 1, max: 100_000 }), holdDays: fc.constantFrom(0, 0, 3) }),
    fc.record({ type: fc.constant('spend' as const), share: fc.double({ min: 0, max: 1, noNaN: true }) }),
    fc.record({ type: fc.constant('reverse' as const), pick: fc.nat() }),
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
function play(ops: { afterHours: number; op: Op }[], extraJobs: boolean): { ledger: Ledger; end: number; minBalance: number; reversed: number } {
  const ledger = new Ledger();
  let reversed = 0;
  const reversible: ExpiryEntry[] = [];
  let t = T0;
  let minBalance = 0;
  let n = 0;
  for (const { afterHours, op } of ops) {
    t += afterHours * 3_600_000;
    n++;
    if (op.type === 'credit') {
      const availableAt = new Date(t + op.holdDays * DAY_MS);
      // Referral rewards belong to a deal (which may be lost later); promo credits do not.
      const dealId = op.reason === 'referral' ? n : null;
      ledger.append({ amount: op.amount, reason: op.reason, dealId, level: dealId ? 1 : 0, idempotencyKey: `${op.reason}:${n}`, availableAt, expiresAt: expiresAtFor(availableAt, DAYS) });
      if (dealId) reversible.push(ledger.entries.at(-1)!);
    } else if (op.type === 'reverse') {
      // The deal is lost: its reward is reversed whole, as settling does (available no earlier than the credit).
      const target = reversible.splice(op.pick % Math.max(1, reversible.length), 1)[0];
      if (target) {
        reversed += target.amount;
        const availableAt = new Date(Math.max(t, target.availableAt.getTime()));
        ledger.append({ amount: -target.amount, reason: target.reason, dealId: target.dealId, level: target.level, idempotencyKey: `reversal:${target.id}`, availableAt, expiresAt: null });
      }
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
  return { ledger, end, minBalance, reversed };
}

describe('bonus expiry: balance = sum of the ledger', () => {
  it('never negative, zero once everything expired, and the same whenever the job runs', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const often = play(ops, true);
        const rarely = play(ops, false);
        const final = often.ledger.balance(often.end);
        const spent = often.ledger.entries.some((e) => e.reason === 'redemption');
        if (often.reversed === 0 || !spent) {
          // Nothing reversed, or nothing spent (so a reversal never meets spent bonus): everything
          // was either spent or expired or taken back, and nothing twice. (Between a reversal of an
          // expired reward and the next job run the balance may dip: the give-back is the job's.)
          if (often.reversed === 0) expect(often.minBalance).toBeGreaterThanOrEqual(0);
          expect(final).toBe(0);
        } else {
          // A reversed reward that was already spent is owed (allow_negative); never more than was reversed,
          // and an expired one is never taken twice.
          expect(final).toBeLessThanOrEqual(0);
          expect(final).toBeGreaterThanOrEqual(-often.reversed);
        }
        expect(rarely.ledger.balance(rarely.end)).toBe(final);
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
        if (often.reversed === 0) expect(expiries(often.ledger)).toEqual(expiries(rarely.ledger));
        for (const e of often.ledger.entries) if (e.reason === 'expiry' && lotOfExpiryKey(e.idempotencyKey) !== null && !e.idempotencyKey.includes(':back:')) expect(e.amount).toBeLessThan(0);
      }),
      { numRuns: 300 },
    );
  });
});
