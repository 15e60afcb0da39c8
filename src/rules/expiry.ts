/**
 * Bonus expiry (SPEC 5 `expiry.days`): available bonus expires N days after it became available,
 * oldest first. Each positive entry is a lot worth its amount from its `availableAt` until its
 * `expiresAt` (set when it was credited; null = never expires). Every negative entry other than
 * an expiry spends bonus FIFO: the oldest available lot first — except that a negative entry of a
 * deal slot (a reversal or correction of that deal's reward) takes back its own slot's lots
 * first, so reversing a deal never makes an unrelated older lot "survive" in its place. Spending
 * beyond what is available is a debt that the next lots to become available pay first. What is
 * left of a lot when its `expiresAt` comes (inclusive: at exactly N days it is gone) expires.
 *
 * A reversal of a deal whose credit already expired finds nothing of that credit left to take
 * back: it takes back the expired part instead, so the credit is not removed twice — the expiry
 * is given back (a positive expiry entry) as far as the reversal reaches into it.
 *
 * Expiry entries name the lot they expire in their idempotency key (`expiry:<lot id>`, and
 * `expiry:<lot id>:back:<reversal id>` for a give-back), so the decision is a replay of the
 * member's whole ledger: a lot whose expiry is written is closed at its expiry time with what was
 * written, and nothing is ever written twice.
 */

export interface ExpiryEntry {
  id: number;
  amount: number; // signed, minor units
  reason: string;
  dealId: number | null;
  level: number;
  idempotencyKey: string;
  availableAt: Date;
  expiresAt: Date | null;
}

export interface DueExpiry {
  /** The credit (lot) whose unspent remainder expires. */
  lotId: number;
  /** Negative: what expires; positive: expired bonus given back because its deal was reversed. */
  amount: number;
  /** When it takes effect: the lot's expiresAt, or the reversal's availableAt for a give-back. */
  at: Date;
  idempotencyKey: string;
}

export interface UpcomingExpiry {
  at: Date;
  /** Positive: what would expire at `at` if it is not spent first. */
  amount: number;
}

export interface ExpiryDecision {
  /** Lots expired by `now` whose expiry entry is not written yet, oldest first. */
  due: DueExpiry[];
  /** Unspent amounts of lots expiring in (now, now + horizon], by date, soonest first. */
  upcoming: UpcomingExpiry[];
}

const EXPIRY_KEY_PREFIX = 'expiry:';

export const expiryKey = (lotId: number): string => `${EXPIRY_KEY_PREFIX}${lotId}`;
export const giveBackKey = (lotId: number, reversalId: number): string => `${EXPIRY_KEY_PREFIX}${lotId}:back:${reversalId}`;

const KEY = /^expiry:(\d{1,15})(?::back:(\d{1,15}))?$/;

/** The lot an expiry entry (or give-back) is about, and the reversal of a give-back; null for other keys. */
export function parseExpiryKey(key: string): { lotId: number; reversalId: number | null } | null {
  const m = KEY.exec(key);
  return m ? { lotId: Number(m[1]), reversalId: m[2] === undefined ? null : Number(m[2]) } : null;
}

/** The lot an expiry entry expired, or null when the key is not an expiry key. */
export function lotOfExpiryKey(key: string): number | null {
  return parseExpiryKey(key)?.lotId ?? null;
}

export const DAY_MS = 86_400_000;

/** When an amount available at `availableAt` expires under a program with `days` (0 = never). */
export function expiresAtFor(availableAt: Date, days: number): Date | null {
  return days > 0 ? new Date(availableAt.getTime() + days * DAY_MS) : null;
}

interface Lot {
  id: number;
  slot: string | null;
  availableAt: number;
  expiresAt: number | null;
  remaining: number;
  open: boolean;
  /** What expired of it and was not given back yet. */
  expired: number;
}

// Events at one instant: a lot is available from its availableAt, gone at its expiresAt, and a
// spend at that same instant meets what is left after both.
const ORDER = { available: 0, expire: 1, spend: 2 } as const;

type Event =
  | { at: number; type: 'available'; id: number; lot: Lot }
  | { at: number; type: 'expire'; id: number; lot: Lot }
  | { at: number; type: 'spend'; id: number; amount: number; slot: string | null };

const slotOf = (e: ExpiryEntry): string | null => (e.dealId === null ? null : `${e.dealId}:${e.reason}:${e.level}`);

/**
 * What expires of one member's ledger at `now`: the expiry entries due and not written yet, and
 * what will expire within `horizonMs` after now if not spent first. `entries` must be every entry
 * of the member (expiry entries included); pending entries count from their availableAt.
 */
export function decideExpiry(entries: readonly ExpiryEntry[], now: Date, horizonMs = 30 * DAY_MS): ExpiryDecision {
  const written = new Map<number, number>();
  const writtenKeys = new Set<string>();
  const events: Event[] = [];
  const lotsOfSlot = new Map<string, Lot[]>();
  for (const e of entries) {
    if (e.reason === 'expiry') {
      const key = parseExpiryKey(e.idempotencyKey);
      writtenKeys.add(e.idempotencyKey);
      if (key !== null && key.reversalId === null) written.set(key.lotId, (written.get(key.lotId) ?? 0) + e.amount);
      continue;
    }
    if (e.amount > 0) {
      const lot: Lot = { id: e.id, slot: slotOf(e), availableAt: e.availableAt.getTime(), expiresAt: e.expiresAt?.getTime() ?? null, remaining: e.amount, open: false, expired: 0 };
      if (lot.slot !== null) lotsOfSlot.set(lot.slot, [...(lotsOfSlot.get(lot.slot) ?? []), lot]);
      events.push({ at: lot.availableAt, type: 'available', id: e.id, lot });
      if (lot.expiresAt !== null) events.push({ at: lot.expiresAt, type: 'expire', id: e.id, lot });
    } else if (e.amount < 0) {
      events.push({ at: e.availableAt.getTime(), type: 'spend', id: e.id, amount: -e.amount, slot: slotOf(e) });
    }
  }
  events.sort((a, b) => a.at - b.at || ORDER[a.type] - ORDER[b.type] || a.id - b.id);

  // Open lots in FIFO order (availability, then id: the order their events were sorted in).
  const open: Lot[] = [];
  let debt = 0;
  const take = (lot: Lot, wanted: number): number => {
    const taken = Math.min(lot.remaining, wanted);
    lot.remaining -= taken;
    return taken;
  };
  const due: DueExpiry[] = [];
  const nowMs = now.getTime();

  // Replays up to and including `until`; `expired` receives what each expiring lot still held,
  // `givenBack` what a reversal took back of a lot's expired part.
  let next = 0;
  const replay = (until: number, expired: (lot: Lot, left: number, at: number) => void, givenBack: (lot: Lot, reversalId: number, amount: number, at: number) => void = () => {}): void => {
    for (; next < events.length && events[next]!.at <= until; next++) {
      const ev = events[next]!;
      if (ev.type === 'available') {
        ev.lot.open = true;
        debt -= take(ev.lot, debt);
        open.push(ev.lot);
      } else if (ev.type === 'expire') {
        const lot = ev.lot;
        lot.open = false;
        const left = lot.remaining;
        lot.remaining = 0;
        const w = written.get(lot.id);
        lot.expired = w === undefined ? left : -w;
        expired(lot, left, ev.at);
      } else {
        let wanted = ev.amount;
        if (ev.slot !== null) {
          for (const lot of open) if (lot.open && lot.slot === ev.slot && wanted > 0) wanted -= take(lot, wanted);
          for (const lot of lotsOfSlot.get(ev.slot) ?? []) {
            if (wanted === 0) break;
            if (lot.open || lot.expired === 0) continue;
            const back = Math.min(lot.expired, wanted);
            lot.expired -= back;
            wanted -= back;
            givenBack(lot, ev.id, back, ev.at);
          }
        }
        for (const lot of open) {
          if (wanted === 0) break;
          if (lot.open) wanted -= take(lot, wanted);
        }
        debt += wanted;
      }
      // Closed and empty lots leave the FIFO list (keeps the scan short for long histories).
      while (open.length && (!open[0]!.open || open[0]!.remaining === 0)) open.shift();
    }
  };

  replay(
    nowMs,
    (lot, left, at) => {
      if (!written.has(lot.id) && left > 0) due.push({ lotId: lot.id, amount: -left, at: new Date(at), idempotencyKey: expiryKey(lot.id) });
    },
    (lot, reversalId, amount, at) => {
      const key = giveBackKey(lot.id, reversalId);
      if (!writtenKeys.has(key)) due.push({ lotId: lot.id, amount, at: new Date(at), idempotencyKey: key });
    },
  );
  // Upcoming: lots still holding bonus (pending ones included) whose expiry falls in the horizon.
  // Entries already written for a later instant (e.g. a pending reversal) are replayed too.
  const byDate = new Map<number, number>();
  replay(nowMs + horizonMs, (_lot, left, at) => {
    if (left > 0) byDate.set(at, (byDate.get(at) ?? 0) + left);
  });
  const upcoming = [...byDate.entries()].sort((a, b) => a[0] - b[0]).map(([at, amount]) => ({ at: new Date(at), amount }));
  return { due, upcoming };
}

/**
 * What the expiry job would write at `now` and has not yet (lapsed bonus not yet written off,
 * negative; expiry owed back to a reversal, positive). A spend checks the balance net of it: the
 * job runs hourly, and bonus that lapsed before its run must not be spendable in between — the
 * run would then expire it whole (the spend came after the lapse) and leave the balance negative.
 */
export function unwrittenExpiry(entries: readonly ExpiryEntry[], now: Date): number {
  return decideExpiry(entries, now, 0).due.reduce((sum, d) => sum + d.amount, 0);
}
