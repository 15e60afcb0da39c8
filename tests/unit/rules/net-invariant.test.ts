/**
 * SPEC 5 "Reversal": whatever the number, order and duplication of events, the net a deal has
 * credited to anyone equals what pricing pays if the deal is won now, and zero otherwise. This
 * drives priceDeal + settleDeal the way the deal handler does, against an in-memory ledger whose
 * only guarantee is the one the store gives: an entry with a known idempotency key is dropped.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Program } from '../../../src/rules/program.js';
import { priceDeal, type ClientDeal, type DesiredEntry } from '../../../src/rules/price-deal.js';
import { capReferrerMonth, monthOf } from '../../../src/rules/cap-referrer-month.js';
import { clampOverspend } from '../../../src/rules/clamp-overspend.js';
import { toMinor } from '../../../src/rules/money.js';
import { settleDeal, type PlannedEntry } from '../../../src/rules/settle-deal.js';
import { T0, program } from './rules-fixtures.js';

const HOUR = 3_600_000;
const MOSCOW = 180;
const DEAL_IDS = [1, 2, 3] as const;
type DealId = (typeof DEAL_IDS)[number];

/** The deal as an event payload (or a REST read) shows it. */
interface Snapshot {
  dealId: DealId;
  amount: number;
  won: boolean;
  deleted: boolean;
}

/** The deal as Sarafan's store last saw it. */
interface Seen {
  amount: number;
  categoryId: number;
  won: boolean;
  deleted: boolean;
  firstWonAt: Date | null;
}

interface Applied extends PlannedEntry {
  dealId: number;
  /** Clamp policy: what a reversal could not take back (counted as taken back). */
  shortfall: number;
}

interface Setup {
  program: Program;
  categories: Record<DealId, number>;
  clientMemberId: number | null;
  referral: { createdAt: Date; chain: number[] } | null;
  /** SPEC 5 Reversal: the overspend policy, and how much of each member's bonus was spent elsewhere. */
  overspend: 'allow_negative' | 'clamp';
  spent: number;
}

type Command =
  | { t: 'win'; deal: DealId; amount: number }
  | { t: 'amount'; deal: DealId; amount: number }
  | { t: 'lose'; deal: DealId }
  | { t: 'delete'; deal: DealId }
  | { t: 'deliver'; pick: number }
  | { t: 'redeliver'; pick: number }
  | { t: 'duplicate' }
  | { t: 'race'; pick: number }
  | { t: 'tick'; hours: number }
  /** Bitrix24 never delivers this event (reference §4.4: events are not retried). */
  | { t: 'drop'; pick: number }
  /** Periodic reconciliation (SPEC 6): every deal changed since the watermark is read as it is now. */
  | { t: 'reconcile' };

class World {
  now = new Date(T0.getTime() + HOUR);
  readonly crm = new Map<DealId, Snapshot>();
  readonly seen = new Map<DealId, Seen>();
  readonly ledger: Applied[] = [];
  readonly keys = new Set<string>();
  readonly queue: Snapshot[] = [];
  readonly history: Snapshot[] = [];
  last: Snapshot | null = null;

  constructor(readonly setup: Setup) {}

  change(dealId: DealId, patch: Partial<Snapshot>): void {
    const current = this.crm.get(dealId) ?? { dealId, amount: 0, won: false, deleted: false };
    if (current.deleted) return; // a deleted deal cannot be edited
    const next = { ...current, ...patch };
    this.crm.set(dealId, next);
    this.queue.push(next);
    this.history.push(next);
  }

  clientDeals(): ClientDeal[] {
    return [...this.seen].map(([dealId, s]) => ({ dealId, won: s.won && !s.deleted, firstWonAt: s.firstWonAt, amount: s.amount }));
  }

  price(dealId: DealId) {
    const s = this.seen.get(dealId);
    if (!s) return [];
    return priceDeal({
      program: this.setup.program,
      deal: { dealId, amount: s.amount, categoryId: s.categoryId, won: s.won && !s.deleted, wonAt: s.firstWonAt ?? this.now },
      clientMemberId: this.setup.clientMemberId,
      clientDeals: this.clientDeals(),
      referral: this.setup.referral,
      now: this.now,
    });
  }

  /** The store's view takes the payload; a deletion is final even if an older payload arrives. */
  record(snapshot: Snapshot): void {
    const before = this.seen.get(snapshot.dealId);
    if (before?.deleted) return;
    const won = snapshot.won && !snapshot.deleted;
    this.seen.set(snapshot.dealId, {
      amount: snapshot.amount,
      categoryId: this.setup.categories[snapshot.dealId],
      won,
      deleted: snapshot.deleted,
      firstWonAt: before?.firstWonAt ?? (won ? new Date(this.now) : null),
    });
    this.last = snapshot;
  }

  /**
   * One worker's plan for every deal of the client (a change of one can re-qualify another),
   * through the overspend policy: under `clamp` a reversal meets what the member still holds —
   * the ledger's net less what was spent elsewhere (a redemption the world does not model).
   */
  plan(): Applied[] {
    // The monthly cap as the loop applies it: every deal of the client is settled in the run, in
    // order of first win, each meeting what the deals before it in its Moscow month took.
    const cap = this.setup.program.referral.capPerReferrerMonth === null ? null : toMinor(this.setup.program.referral.capPerReferrerMonth);
    const used = new Map<string, number>();
    const order = [...DEAL_IDS].sort((a, b) => (this.seen.get(a)?.firstWonAt?.getTime() ?? 0) - (this.seen.get(b)?.firstWonAt?.getTime() ?? 0) || a - b);
    const planned = order.flatMap((dealId) => {
      const existing = this.ledger.filter((e) => e.dealId === dealId);
      const firstWonAt = this.seen.get(dealId)?.firstWonAt ?? null;
      let desired: (DesiredEntry & { capped?: number })[] = this.price(dealId);
      if (cap !== null && firstWonAt) {
        const month = monthOf(firstWonAt, MOSCOW).from.toISOString();
        desired = capReferrerMonth(desired, cap, new Map(desired.map((d) => [d.memberId, used.get(`${d.memberId}:${month}`) ?? 0])));
        for (const d of desired) if (d.reason === 'referral') used.set(`${d.memberId}:${month}`, (used.get(`${d.memberId}:${month}`) ?? 0) + d.amount);
      }
      return settleDeal({ dealId, desired, existing, now: this.now }).map((p) => ({ ...p, dealId }));
    });
    const held = new Map<number, number>();
    for (const e of this.ledger) held.set(e.memberId, (held.get(e.memberId) ?? 0) + e.amount);
    for (const [id, amount] of held) held.set(id, amount - this.setup.spent);
    return clampOverspend(this.setup.overspend, planned, held);
  }

  /** The store's unique key: an entry whose key is known is dropped. Returns how many were kept. */
  apply(entries: Applied[]): number {
    let kept = 0;
    for (const e of entries) {
      const key = `${e.dealId}|${e.idempotencyKey}`;
      if (this.keys.has(key)) continue;
      this.keys.add(key);
      this.ledger.push(e);
      kept++;
    }
    return kept;
  }

  process(snapshot: Snapshot): number {
    this.record(snapshot);
    return this.apply(this.plan());
  }

  run(c: Command): void {
    switch (c.t) {
      case 'win':
        return this.change(c.deal, { won: true, amount: c.amount });
      case 'amount':
        return this.change(c.deal, { amount: c.amount });
      case 'lose':
        return this.change(c.deal, { won: false });
      case 'delete':
        return this.change(c.deal, { won: false, deleted: true });
      case 'tick':
        this.now = new Date(this.now.getTime() + c.hours * HOUR);
        return;
      case 'drop':
        if (this.queue.length) this.queue.splice(c.pick % this.queue.length, 1);
        return;
      case 'reconcile':
        for (const snapshot of this.crm.values()) this.process(snapshot);
        return;
      case 'deliver': {
        if (!this.queue.length) return;
        const [snapshot] = this.queue.splice(c.pick % this.queue.length, 1);
        this.process(snapshot!);
        return;
      }
      case 'redeliver': {
        // An old payload delivered again, possibly after newer ones: a duplicate and a reordering.
        if (!this.history.length) return;
        this.process(this.history[c.pick % this.history.length]!);
        return;
      }
      case 'duplicate': {
        if (!this.last) return;
        this.process(this.last);
        expect(this.process(this.last), 'the same payload processed twice adds nothing the second time').toBe(0);
        return;
      }
      case 'race': {
        if (!this.queue.length) return;
        const [snapshot] = this.queue.splice(c.pick % this.queue.length, 1);
        this.record(snapshot!);
        const first = this.plan();
        const second = this.plan(); // from the same snapshot, before the first is stored
        this.apply(first);
        expect(this.apply(second), 'the second worker of a race adds nothing').toBe(0);
        return;
      }
    }
  }

  nets(dealId: number): Map<string, number> {
    const nets = new Map<string, number>();
    for (const e of this.ledger) {
      if (e.dealId !== dealId) continue;
      const slot = `${e.memberId}:${e.reason}:${e.level}`;
      // The invariant counts a shortfall as taken back (src/rules/clamp-overspend.ts).
      nets.set(slot, (nets.get(slot) ?? 0) + e.amount - e.shortfall);
    }
    return nets;
  }

  /** The hold-back each slot's latest entry recorded (monthly cap). */
  lastCapped(dealId: number): Map<string, number> {
    const capped = new Map<string, number>();
    for (const e of this.ledger) if (e.dealId === dealId) capped.set(`${e.memberId}:${e.reason}:${e.level}`, e.capped);
    return capped;
  }

  checkInvariant(): void {
    // With a monthly cap, a slot's net plus what the cap held back is what pricing pays.
    const capped = DEAL_IDS.map((id) => this.lastCapped(id));
    DEAL_IDS.forEach((dealId, i) => {
      const want = new Map(this.price(dealId).map((d) => [`${d.memberId}:${d.reason}:${d.level}`, d.amount]));
      const have = this.nets(dealId);
      for (const slot of new Set([...want.keys(), ...have.keys()])) {
        expect((have.get(slot) ?? 0) + (capped[i]!.get(slot) ?? 0), `deal ${dealId}, slot ${slot}`).toBe(want.get(slot) ?? 0);
      }
    });
    const cap = this.setup.program.referral.capPerReferrerMonth === null ? null : toMinor(this.setup.program.referral.capPerReferrerMonth);
    if (cap !== null) {
      // No referrer ever holds more than the cap from the deals of one month.
      const perMonth = new Map<string, number>();
      for (const e of this.ledger) {
        const firstWonAt = this.seen.get(e.dealId as DealId)?.firstWonAt;
        if (e.reason !== 'referral' || !firstWonAt) continue;
        const key = `${e.memberId}:${monthOf(firstWonAt, MOSCOW).from.toISOString()}`;
        perMonth.set(key, (perMonth.get(key) ?? 0) + e.amount - e.shortfall);
      }
      for (const [key, net] of perMonth) expect(net, `referrer month ${key}`).toBeLessThanOrEqual(cap);
    } else {
      for (const e of this.ledger) expect(e.capped).toBe(0);
    }
    if (![...this.seen.values()].some((s) => s.won && !s.deleted)) {
      for (const dealId of DEAL_IDS) for (const net of this.nets(dealId).values()) expect(net).toBe(0);
    }
    // An entry moves money, except a clamped reversal that met nothing left to take back, or a
    // change of the cap's hold-back alone.
    for (const e of this.ledger) if (e.amount === 0) expect(e.shortfall > 0 || cap !== null).toBe(true);
    if (this.setup.overspend === 'clamp') {
      // Clamping never takes a member below zero by itself: a balance only goes negative by spending elsewhere.
      const held = new Map<number, number>();
      for (const e of this.ledger) held.set(e.memberId, (held.get(e.memberId) ?? 0) + e.amount);
      for (const [memberId, amount] of held) expect(amount - this.setup.spent, `member ${memberId} after clamping`).toBeGreaterThanOrEqual(Math.min(0, -this.setup.spent));
      for (const e of this.ledger) expect(e.shortfall === 0 || e.amount <= 0).toBe(true);
    } else {
      for (const e of this.ledger) expect(e.shortfall).toBe(0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

const percent = fc.integer({ min: 1, max: 5000 }).map((n) => ({ percent: n / 100 }));
const fixed = fc.integer({ min: 1, max: 100_000 }).map((n) => ({ fixed: n / 100 }));
const reward = fc.oneof(percent, fixed);
const tiers = fc.oneof(
  fc.constant({ basis: 'won_amount', levels: [] }),
  fc.constant({
    basis: 'won_amount',
    levels: [
      { name: 'Silver', from: 0, cashbackPercent: 1 },
      { name: 'Gold', from: 1500, cashbackPercent: 3 },
      { name: 'Platinum', from: 4000.5, cashbackPercent: 7.5 },
    ],
  }),
  fc.constant({ basis: 'won_count', levels: [{ name: 'Regular', from: 1, cashbackPercent: 2 }, { name: 'VIP', from: 2, cashbackPercent: 4 }] }),
);

const programArb = fc
  .record({
    qualify: fc.constantFrom('first_won_deal', 'every_won_deal'),
    windowDays: fc.integer({ min: 1, max: 3 }),
    minDealAmount: fc.constantFrom(0, 100, 1000.5),
    categories: fc.constantFrom([], [1]),
    levels: fc.array(reward, { minLength: 1, maxLength: 3 }),
    referee: fc.option(reward),
    holdDays: fc.integer({ min: 0, max: 3 }),
    capPerReferral: fc.option(fc.integer({ min: 1, max: 100_000 }).map((n) => n / 100)),
    capPerReferrerMonth: fc.option(fc.integer({ min: 1, max: 200_000 }).map((n) => n / 100), { freq: 3 }),
    cashback: fc.oneof(fc.constant({ enabled: false }), fc.integer({ min: 0, max: 1000 }).map((n) => ({ enabled: true, percent: n / 100 }))),
    tiers,
  })
  .map(({ cashback, tiers: t, ...referral }) => program({ referral, cashback, tiers: t }));

const setupArb: fc.Arbitrary<Setup> = fc.record({
  program: programArb,
  categories: fc.record({ 1: fc.constantFrom(0, 1), 2: fc.constantFrom(0, 1), 3: fc.constantFrom(0, 1) }),
  clientMemberId: fc.constantFrom(1, 1, 1, null),
  referral: fc.option(fc.constantFrom<number[]>([101], [101, 102], [101, 102, 103]).map((chain) => ({ createdAt: T0, chain: [...chain] })), { freq: 6 }),
  overspend: fc.constantFrom('allow_negative' as const, 'clamp' as const),
  spent: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200_000 })),
});

const dealArb = fc.constantFrom(...DEAL_IDS);
const amountArb = fc.oneof(fc.integer({ min: 0, max: 600_000 }), fc.constantFrom(0, 10_000, 100_050, 100_049), fc.integer({ min: -50_000, max: -1 }));
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('win' as const), deal: dealArb, amount: amountArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('amount' as const), deal: dealArb, amount: amountArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('lose' as const), deal: dealArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('delete' as const), deal: dealArb }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('deliver' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('redeliver' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: 'duplicate' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('race' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('tick' as const), hours: fc.integer({ min: 1, max: 40 }) }) },
);
const lossyCommandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 12, arbitrary: commandArb },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('drop' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reconcile' as const }) },
);

// ---------------------------------------------------------------------------------------------

describe('the net invariant', () => {
  it('holds after every step of any schedule of wins, amount changes, losses, deletions, duplicates, reorderings and races', () => {
    fc.assert(
      fc.property(setupArb, fc.array(commandArb, { minLength: 1, maxLength: 40 }), (setup, commands) => {
        const world = new World(setup);
        for (const c of commands) {
          world.run(c);
          world.checkInvariant();
        }
        // Once every payload is in, the ledger follows the deals as they are now.
        while (world.queue.length) world.run({ t: 'deliver', pick: world.queue.length - 1 });
        world.checkInvariant();
      }),
      { numRuns: 400 },
    );
  });

  it('holds with dropped events too, and a reconciliation brings the ledger to the deals as they are now', () => {
    fc.assert(
      fc.property(setupArb, fc.array(lossyCommandArb, { minLength: 1, maxLength: 40 }), (setup, commands) => {
        const world = new World(setup);
        for (const c of commands) {
          world.run(c);
          world.checkInvariant();
        }
        // Some events never came: a reconciliation reads every deal as it is now.
        world.run({ t: 'reconcile' });
        world.checkInvariant();
        for (const [dealId, now] of world.crm) {
          const seen = world.seen.get(dealId)!;
          expect(seen.deleted, `deal ${dealId} deleted`).toBe(now.deleted);
          expect(seen.won, `deal ${dealId} won`).toBe(now.won && !now.deleted);
          if (!now.deleted) expect(seen.amount, `deal ${dealId} amount`).toBe(now.amount);
        }
        // A second reconciliation with nothing new adds nothing (it runs every few minutes).
        const before = world.ledger.length;
        world.run({ t: 'reconcile' });
        expect(world.ledger.length).toBe(before);
      }),
      { numRuns: 400 },
    );
  });

  it('pays a deal won, lost and won again once, with one credit per slot', () => {
    fc.assert(
      fc.property(setupArb, amountArb, fc.integer({ min: 1, max: 100 }), (setup, amount, hours) => {
        const world = new World(setup);
        const step = (c: Command) => {
          world.run(c);
          world.run({ t: 'deliver', pick: 0 });
          world.run({ t: 'tick', hours });
        };
        step({ t: 'win', deal: 1, amount });
        const once = world.price(1);
        step({ t: 'lose', deal: 1 });
        expect([...world.nets(1).values()].every((n) => n === 0)).toBe(true);
        step({ t: 'win', deal: 1, amount });
        world.checkInvariant();
        expect(world.price(1).map((d) => d.amount)).toEqual(once.map((d) => d.amount));
        const credits = world.ledger.filter((e) => e.kind === 'credit').map((e) => `${e.memberId}:${e.reason}:${e.level}`);
        expect(new Set(credits).size).toBe(credits.length);
        // A clamped reversal's shortfall is written off: counted as taken back, never recovered.
        const heldBack = [...world.lastCapped(1).values()].reduce((sum, c) => sum + c, 0);
        const total = world.ledger.reduce((sum, e) => sum + e.amount - e.shortfall, 0) + heldBack;
        expect(total).toBe(once.reduce((sum, d) => sum + d.amount, 0));
      }),
      { numRuns: 200 },
    );
  });

  it('example: default program, won, lost, won again → credit, reversal, correction, net 10 %', () => {
    const world = new World({ program: program(), categories: { 1: 0, 2: 0, 3: 0 }, clientMemberId: 1, referral: { createdAt: T0, chain: [101] }, overspend: 'allow_negative', spent: 0 });
    for (const c of [{ t: 'win', deal: 1, amount: 100000 }, { t: 'lose', deal: 1 }, { t: 'win', deal: 1, amount: 100000 }] as Command[]) {
      world.run(c);
      world.run({ t: 'deliver', pick: 0 });
    }
    expect(world.ledger.map((e) => [e.kind, e.amount, e.idempotencyKey])).toEqual([
      ['credit', 10000, 'deal:1:referral:1:101:0'],
      ['reversal', -10000, 'deal:1:referral:1:101:1'],
      ['correction', 10000, 'deal:1:referral:1:101:2'],
    ]);
  });

  it('example: clamp — a reversal meeting spent bonus takes back what is left and records the shortfall', () => {
    const world = new World({ program: program(), categories: { 1: 0, 2: 0, 3: 0 }, clientMemberId: 1, referral: { createdAt: T0, chain: [101] }, overspend: 'clamp', spent: 7000 });
    for (const c of [{ t: 'win', deal: 1, amount: 100000 }, { t: 'lose', deal: 1 }, { t: 'lose', deal: 1 }] as Command[]) {
      world.run(c);
      world.run({ t: 'deliver', pick: 0 });
    }
    expect(world.ledger.map((e) => [e.kind, e.amount, e.shortfall])).toEqual([
      ['credit', 10000, 0],
      ['reversal', -3000, 7000],
    ]);
    expect(world.nets(1).get('101:referral:1')).toBe(0);
  });

  it('example: the reward moves to the next won deal when the first is lost, and back when it is won again', () => {
    const world = new World({ program: program(), categories: { 1: 0, 2: 0, 3: 0 }, clientMemberId: 1, referral: { createdAt: T0, chain: [101] }, overspend: 'allow_negative', spent: 0 });
    const process = (c: Command) => {
      world.run(c);
      world.run({ t: 'deliver', pick: 0 });
      world.run({ t: 'tick', hours: 1 });
    };
    process({ t: 'win', deal: 1, amount: 100000 });
    process({ t: 'win', deal: 2, amount: 50000 });
    expect([world.nets(1).get('101:referral:1'), world.nets(2).get('101:referral:1') ?? 0]).toEqual([10000, 0]);
    process({ t: 'lose', deal: 1 });
    expect([world.nets(1).get('101:referral:1'), world.nets(2).get('101:referral:1')]).toEqual([0, 5000]);
    process({ t: 'win', deal: 1, amount: 100000 });
    expect([world.nets(1).get('101:referral:1'), world.nets(2).get('101:referral:1')]).toEqual([10000, 0]);
  });
});
