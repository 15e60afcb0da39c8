import { describe, expect, it } from 'vitest';
import { DAY_MS, decideExpiry, expiresAtFor, expiryKey, giveBackKey, lotOfExpiryKey, parseExpiryKey, unwrittenExpiry, type ExpiryEntry } from '../../../src/rules/expiry.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const day = (d: number, ms = 0) => new Date(T0.getTime() + d * DAY_MS + ms);
const N = 30; // the program's expiry.days in these tables

let nextId = 1;
/** A credit available on `availableDay`, expiring N days later (null = a credit without expiry). */
const credit = (amount: number, availableDay: number, opts: { expires?: boolean; dealId?: number } = {}): ExpiryEntry => {
  const id = nextId++;
  return {
    id,
    amount,
    reason: 'referral',
    dealId: opts.dealId ?? null,
    level: opts.dealId ? 1 : 0,
    idempotencyKey: `c:${id}`,
    availableAt: day(availableDay),
    expiresAt: opts.expires === false ? null : expiresAtFor(day(availableDay), N),
  };
};
const spend = (amount: number, onDay: number, opts: { dealId?: number } = {}): ExpiryEntry => {
  const id = nextId++;
  return { id, amount: -amount, reason: opts.dealId ? 'referral' : 'redemption', dealId: opts.dealId ?? null, level: opts.dealId ? 1 : 0, idempotencyKey: `s:${id}`, availableAt: day(onDay), expiresAt: null };
};
const expired = (lot: ExpiryEntry, amount: number): ExpiryEntry => {
  const id = nextId++;
  return { id, amount: -amount, reason: 'expiry', dealId: null, level: 0, idempotencyKey: expiryKey(lot.id), availableAt: lot.expiresAt!, expiresAt: null };
};

/** [lot index in the entries, amount expired] for the due list. */
function due(entries: ExpiryEntry[], now: Date): [number, number][] {
  return decideExpiry(entries, now).due.map((d) => [entries.findIndex((e) => e.id === d.lotId), -d.amount]);
}

describe('decideExpiry: what expires, oldest first', () => {
  const cases: [string, () => ExpiryEntry[], Date, [number, number][]][] = [
    ['nothing before N days', () => [credit(100, 0)], day(N, -1), []],
    ['the whole lot at exactly N days', () => [credit(100, 0)], day(N), [[0, 100]]],
    ['long after, still once and the whole lot', () => [credit(100, 0)], day(400), [[0, 100]]],
    ['a credit without expiry never expires', () => [credit(100, 0, { expires: false })], day(400), []],
    ['a spend takes the oldest lot first', () => [credit(100, 0), credit(100, 10), spend(60, 20)], day(N), [[0, 40]]],
    ['a spend larger than the oldest lot moves on to the next', () => [credit(100, 0), credit(100, 10), spend(150, 20)], day(N + 10), [[1, 50]]],
    ['both lots expire in order, each with its remainder', () => [credit(100, 0), credit(100, 10), spend(30, 5)], day(N + 10), [[0, 70], [1, 100]]],
    ['a spend after the oldest expired meets only the next lot', () => [credit(100, 0), credit(100, 10), spend(50, N + 1)], day(N + 10), [[0, 100], [1, 50]]],
    ['a spend at the very instant of expiry comes too late for that lot', () => [credit(100, 0), credit(100, 10), spend(50, N)], day(N + 10), [[0, 100], [1, 50]]],
    ['fully spent lots expire nothing', () => [credit(100, 0), spend(100, 1)], day(N + 1), []],
    ['a debt is paid by the next lot first', () => [credit(100, 0), spend(150, 1), credit(100, 2)], day(N + 2), [[2, 50]]],
    ['a pending lot is not spent before it becomes available', () => [credit(100, 0), credit(100, 5), spend(80, 1)], day(N + 5), [[0, 20], [1, 100]]],
    ['a reversal takes back its own deal first, not the older lot', () => [credit(100, 0), credit(70, 5, { dealId: 9 }), spend(70, 6, { dealId: 9 })], day(N + 5), [[0, 100]]],
  ];
  it.each(cases)('%s', (_name, build, now, expected) => {
    expect(due(build(), now)).toEqual(expected);
  });

  it('an expiry already written is not written again, and its lot is closed', () => {
    const lot = credit(100, 0);
    const entries = [lot, credit(50, 10), expired(lot, 100)];
    expect(decideExpiry(entries, day(N + 5)).due).toEqual([]);
    // A later spend meets the second lot only.
    expect(due([...entries, spend(20, N + 6)], day(N + 10))).toEqual([[1, 30]]);
  });

  it('a reversal of a deal whose credit already expired gives the expiry back instead of taking the bonus twice', () => {
    const lot = credit(100, 0, { dealId: 9 });
    const other = credit(50, 1);
    const reversal = spend(100, 40, { dealId: 9 });
    const entries = [lot, other, expired(lot, 100), reversal];
    const decision = decideExpiry(entries, day(41));
    expect(decision.due).toEqual([
      { lotId: other.id, amount: -50, at: day(N + 1), idempotencyKey: expiryKey(other.id) },
      { lotId: lot.id, amount: 100, at: day(40), idempotencyKey: giveBackKey(lot.id, reversal.id) },
    ]);
    // Written, it is not written again; the unrelated lot was untouched and expires whole.
    const back = { id: 999, amount: 100, reason: 'expiry', dealId: null, level: 0, idempotencyKey: giveBackKey(lot.id, reversal.id), availableAt: day(40), expiresAt: null };
    expect(due([...entries, back], day(41))).toEqual([[1, 50]]);
    expect(parseExpiryKey(back.idempotencyKey)).toEqual({ lotId: lot.id, reversalId: reversal.id });
  });

  it('a reversal after a partly spent credit expired gives back only what expired; the rest is a debt', () => {
    const lot = credit(100, 0, { dealId: 9 });
    const entries = [lot, spend(60, 5), expired(lot, 40), spend(100, 40, { dealId: 9 })];
    const { due: list } = decideExpiry(entries, day(41));
    expect(list.map((d) => d.amount)).toEqual([40]);
    // +100 − 60 − 40 − 100 + 40: the 60 spent of a reward that was taken back is owed.
    expect(entries.reduce((s, e) => s + e.amount, 0) + 40).toBe(-60);
  });

  it('expiry and its give-back are both due when the job runs after the reversal', () => {
    const lot = credit(100, 0, { dealId: 9 });
    const entries = [lot, spend(100, 40, { dealId: 9 })];
    expect(decideExpiry(entries, day(41)).due.map((d) => [d.amount, d.at])).toEqual([
      [-100, day(N)],
      [100, day(40)],
    ]);
  });

  it('answers the due entry with its key and the instant it expired', () => {
    const lot = credit(100, 0);
    expect(decideExpiry([lot], day(99)).due).toEqual([{ lotId: lot.id, amount: -100, at: day(N), idempotencyKey: `expiry:${lot.id}` }]);
  });
});

describe('decideExpiry: what will expire soon', () => {
  it('lists unspent amounts expiring within the horizon, by date', () => {
    const entries = [credit(100, 0), credit(40, 0), credit(100, 10), spend(30, 1), credit(500, 60)];
    expect(decideExpiry(entries, day(15)).upcoming).toEqual([
      { at: day(N), amount: 110 },
      { at: day(N + 10), amount: 100 },
    ]);
    // Past the first date: only the second; the third is beyond 30 days.
    expect(decideExpiry(entries, day(N)).upcoming).toEqual([{ at: day(N + 10), amount: 100 }]);
  });

  it('the horizon is inclusive of its end and exclusive of now', () => {
    expect(decideExpiry([credit(100, 0)], day(0)).upcoming).toEqual([{ at: day(N), amount: 100 }]);
    expect(decideExpiry([credit(100, 0)], day(0, -1)).upcoming).toEqual([]);
    expect(decideExpiry([credit(100, 0)], day(N)).upcoming).toEqual([]);
  });
});

describe('expiry keys and dates', () => {
  it('round-trips the lot id and refuses other keys', () => {
    expect(lotOfExpiryKey(expiryKey(42))).toBe(42);
    expect(lotOfExpiryKey('promo:ABC')).toBeNull();
    expect(lotOfExpiryKey('expiry:x')).toBeNull();
  });
  it('0 days means never', () => {
    expect(expiresAtFor(T0, 0)).toBeNull();
    expect(expiresAtFor(T0, 1)).toEqual(day(1));
  });
});

describe('unwrittenExpiry: what a spend must not count on before the job runs', () => {
  it('is the lapsed remainder not yet written, net of expiry owed back', () => {
    const lot = credit(100_00, 0);
    const keep = credit(50_00, 0, { expires: false });
    const spent = spend(30_00, 10);
    expect(unwrittenExpiry([lot, keep, spent], day(N - 1))).toBe(0);
    expect(unwrittenExpiry([lot, keep, spent], day(N))).toBe(-70_00);
    expect(unwrittenExpiry([lot, keep, spent, expired(lot, 70_00)], day(N + 1))).toBe(0);
    // A deal reward that lapsed, then its reversal: the lapse and the give-back cancel out.
    const reward = credit(40_00, 0, { dealId: 9 });
    expect(unwrittenExpiry([reward, spend(40_00, N + 2, { dealId: 9 })], day(N + 3))).toBe(0);
  });
});
