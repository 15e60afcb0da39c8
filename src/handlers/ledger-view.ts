/**
 * What the read API shows of members and ledger entries, shared by read-member and read-deal:
 * CRM references instead of internal member ids, amounts as decimals in the program currency
 * (SPEC 3), and each entry's status derived from its deal slot (src/rules/ledger-status.ts).
 */
import type { CouponItem, LedgerItem } from '../contract/api.js';
import { entryStatuses } from '../rules/ledger-status.js';
import { fromMinor } from '../rules/money.js';
import type { Coupon, LedgerEntry, Member, Repos, PersonRef } from './ports.js';

/** A milestone coupon as the API answers it (SPEC 5.1 coupons): the contract's type. */
export type { CouponItem, LedgerItem };

export function couponItems(coupons: Coupon[]): CouponItem[] {
  return coupons.map((c) => ({ code: c.code, value: fromMinor(c.value), milestone: c.milestone, status: c.status, issuedAt: c.createdAt.toISOString() }));
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
