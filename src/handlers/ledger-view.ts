/**
 * What the read API shows of members and ledger entries, shared by read-member and read-deal:
 * CRM references instead of internal member ids, amounts as decimals in the program currency
 * (SPEC 3), and each entry's status derived from its deal slot (src/rules/ledger-status.ts).
 */
import { entryStatuses, type EntryStatus } from '../rules/ledger-status.js';
import { fromMinor } from '../rules/money.js';
import type { Coupon, CouponStatus, LedgerEntry, LedgerKind, LedgerReason, Member, Repos, PersonRef } from './ports.js';

/** A milestone coupon as the API answers it (SPEC 5.1 coupons). */
export interface CouponItem {
  code: string;
  /** Decimal, program currency. */
  value: number;
  /** 1 for the first `everyReferrals` qualified referrals, 2 for the next, … */
  milestone: number;
  status: CouponStatus;
  /** ISO time it was first issued. */
  issuedAt: string;
}

export function couponItems(coupons: Coupon[]): CouponItem[] {
  return coupons.map((c) => ({ code: c.code, value: fromMinor(c.value), milestone: c.milestone, status: c.status, issuedAt: c.createdAt.toISOString() }));
}

export interface LedgerItem {
  id: number;
  /** ISO time the entry was written. */
  at: string;
  reason: LedgerReason;
  kind: LedgerKind;
  /** Decimal, program currency; negative for reversals and redemptions. */
  amount: number;
  status: EntryStatus;
  dealId: number | null;
  level: number;
  /** ISO time the amount becomes (or became) available. */
  availableAt: string;
  comment: string | null;
  /** Decimal: what the referrer's monthly cap held back from this slot (0 when nothing). */
  capped: number;
  /** Decimal: what a clamped reversal could not take back because the bonus was spent. */
  shortfall: number;
  /** The conversion that priced it: the deal's currency, rate and amount (decimal), or null. */
  fx: { currency: string; rate: string; amount: number } | null;
}

/** The CRM card a member shows on: its contact, else its lead. */
export function personOf(member: Member | null | undefined): PersonRef | null {
  if (!member) return null;
  if (member.contactId !== null) return { entity: 'contact', id: member.contactId };
  if (member.leadId !== null) return { entity: 'lead', id: member.leadId };
  return null;
}

/**
 * Ledger entries as the API answers them, in the given order. `slotEntries` are the other
 * entries of the same deals (for the reversed status); when omitted they are read.
 */
export async function ledgerItems(
  store: Pick<Repos, 'ledger'>,
  portalId: number,
  entries: LedgerEntry[],
  now: Date,
  slotEntries?: LedgerEntry[],
): Promise<LedgerItem[]> {
  const dealIds = [...new Set(entries.map((e) => e.dealId).filter((id): id is number => id !== null))];
  const couponHolders = [...new Set(entries.filter((e) => e.reason === 'coupon').map((e) => e.memberId))];
  const slots = [
    ...(slotEntries ?? (await store.ledger.forDeals(portalId, dealIds))),
    // A coupon's reversal may be on another deal than its credit (src/rules/ledger-status.ts).
    ...(couponHolders.length ? await store.ledger.couponEntries(portalId, couponHolders) : []),
  ];
  const statuses = entryStatuses(entries, slots, now);
  return entries.map((e) => ({
    id: e.id,
    at: e.createdAt.toISOString(),
    reason: e.reason,
    kind: e.kind,
    amount: fromMinor(e.amount),
    status: statuses.get(e.id) ?? 'available',
    dealId: e.dealId,
    level: e.level,
    availableAt: e.availableAt.toISOString(),
    comment: e.comment,
    capped: fromMinor(e.capped),
    shortfall: fromMinor(e.shortfall),
    fx: e.fx ? { currency: e.fx.currency, rate: e.fx.rate, amount: fromMinor(e.fx.amount) } : null,
  }));
}
