/**
 * GET /api/deals/:id (SPEC 3, 7 deal tab): the deal's referral (code and referrer), every ledger
 * entry the deal caused with its status and beneficiary, and its client's balance — read within
 * the caller's portal. A deal Sarafan has not seen (or that caused nothing) is a normal card:
 * `referral: null`, no entries.
 */
import { fromMinor } from '../rules/money.js';
import { couponItems, ledgerItems, personOf, type CouponItem, type LedgerItem } from './ledger-view.js';
import { currentProgram } from './program-versions.js';
import type { Deps, Installation, ReferralSource, ReferralStatus, PersonRef, RejectReason } from './ports.js';
import type { ReferralView } from './referral-view.js';

export interface DealEntry extends LedgerItem {
  /** Who the entry credits or debits. */
  member: PersonRef | null;
}

export interface DealAnswer {
  id: number;
  /** The program currency all amounts are in. */
  currency: string;
  /**
   * The referral of the deal's client: the one in force, else the rejection of this deal's claim
   * (or the client's latest), with its reason and any admin override.
   */
  referral: {
    id: number;
    code: string | null;
    referrer: PersonRef | null;
    source: ReferralSource;
    status: ReferralStatus;
    rejectReason: RejectReason | null;
    override: ReferralView['override'];
  } | null;
  /** Oldest first. */
  entries: DealEntry[];
  /** Milestone coupons whose credit or reversal this deal's change caused, with their holder. */
  coupons: (CouponItem & { member: PersonRef | null })[];
  client: (PersonRef & { balance: number; pending: number }) | null;
}

export async function readDeal(deps: Deps, installation: Installation, dealId: number): Promise<DealAnswer> {
  const { store } = deps;
  const portalId = installation.id;
  const now = deps.clock.now();
  const { program } = await currentProgram(store.programs, portalId, now);
  const [deal, entries] = await Promise.all([store.deals.get(portalId, dealId), store.ledger.forDeal(portalId, dealId)]);

  const clientMemberId = deal?.clientMemberId ?? null;
  let referral = deal?.referralId ? await store.referrals.get(portalId, deal.referralId) : null;
  if (!referral && clientMemberId) {
    const all = await store.referrals.ofReferees(portalId, [clientMemberId]);
    referral = all.find((r) => r.status === 'active') ?? all.find((r) => r.sourceRef === `deal:${dealId}`) ?? all[0] ?? null;
  }
  const memberIds = [...new Set([...entries.map((e) => e.memberId), ...(referral?.referrerMemberId ? [referral.referrerMemberId] : []), ...(clientMemberId ? [clientMemberId] : [])])];
  const members = new Map((await store.members.getMany(portalId, memberIds)).map((m) => [m.id, m]));
  const items = await ledgerItems(store, portalId, entries, now, entries);

  const couponSlots = entries.filter((e) => e.reason === 'coupon');
  const holders = [...new Set(couponSlots.map((e) => e.memberId))];
  const coupons = (holders.length ? await store.coupons.forMembers(portalId, holders) : []).filter((c) =>
    couponSlots.some((e) => e.memberId === c.memberId && e.level === c.milestone),
  );

  let client: DealAnswer['client'] = null;
  const clientRef = clientMemberId ? personOf(members.get(clientMemberId)) : null;
  if (clientMemberId && clientRef) {
    const balance = (await store.ledger.balances(portalId, [clientMemberId], now)).get(clientMemberId) ?? { available: 0, pending: 0 };
    client = { ...clientRef, balance: fromMinor(balance.available), pending: fromMinor(balance.pending) };
  }

  return {
    id: dealId,
    currency: program.currency,
    referral: referral
      ? {
          id: referral.id,
          code: referral.code,
          referrer: referral.referrerMemberId ? personOf(members.get(referral.referrerMemberId)) : null,
          source: referral.source,
          status: referral.status,
          rejectReason: referral.rejectReason,
          override: referral.override ? { by: referral.override.by, at: referral.override.at.toISOString(), comment: referral.override.comment } : null,
        }
      : null,
    entries: items.map((item, i) => ({ ...item, member: personOf(members.get(entries[i]!.memberId)) })),
    coupons: couponItems(coupons).map((item, i) => ({ ...item, member: personOf(members.get(coupons[i]!.memberId)) })),
    client,
  };
}
