/**
 * GET /api/deals/:id (SPEC 3, 7 deal tab): the deal's referral (code and referrer), every ledger
 * entry the deal caused with its status and beneficiary, and its client's balance — read within
 * the caller's portal. A deal Sarafan has not seen (or that caused nothing) is a normal card:
 * `referral: null`, no entries.
 */
import type { DealAnswer, DealEntry, DealRedemption } from '../contract/api.js';
import { unwrittenExpiry } from '../rules/expiry.js';
import { fromMinor } from '../rules/money.js';
import type { Program } from '../rules/program.js';
import { checkRedemption, mostRedeemable, redeemedOnDeal, redemptionFacts } from '../rules/redemption.js';
import { couponItems, ledgerItems, personOf } from './ledger-view.js';
import { portalRates } from './program-keys.js';
import { currentProgram } from './program-versions.js';
import type { Balance, DealState, Deps, Installation, LedgerEntry } from './ports.js';

/** The answer is the API contract's type (src/contract/api.ts). */
export type { DealAnswer, DealEntry };

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
  let balance: Balance = { available: 0, pending: 0 };
  let lapsed = 0;
  const clientRef = clientMemberId ? personOf(members.get(clientMemberId)) : null;
  if (clientMemberId && clientRef) {
    const [balances, clientEntries] = await Promise.all([store.ledger.balances(portalId, [clientMemberId], now), store.ledger.forMembers(portalId, [clientMemberId])]);
    balance = balances.get(clientMemberId) ?? balance;
    lapsed = unwrittenExpiry(clientEntries, now);
    client = { ...clientRef, balance: fromMinor(balance.available), pending: fromMinor(balance.pending) };
  }
  const redemption = deal ? await redemptionOf(deps, installation, { deal, program, entries, available: clientRef ? balance.available : 0, lapsed }) : null;

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
    redemption: redemption?.view ?? null,
    dealTotal: redemption?.dealTotal ?? null,
  };
}

/**
 * The redeem form's facts, decided by the rules the redeem handler decides with
 * (src/rules/redemption.ts) over the same committed state, so `maxNow` is what POST …/redeem
 * accepts now (unless something changes in between; the server decides again under its locks).
 * A deal in another currency reads the portal's rates like the handler does (cached a day).
 */
async function redemptionOf(
  deps: Deps,
  installation: Installation,
  a: { deal: DealState; program: Program; entries: LedgerEntry[]; available: number; lapsed: number },
): Promise<{ view: DealRedemption; dealTotal: number | null }> {
  const { deal, program } = a;
  const rates = deal.currency && deal.currency !== program.currency ? await portalRates(deps, installation) : null;
  const situation = redemptionFacts({
    deal,
    programCurrency: program.currency,
    maxPercentOfDeal: program.redemption.maxPercentOfDeal,
    rates,
    available: a.available,
    lapsed: a.lapsed,
    dealEntries: a.entries,
  });
  const redeemed = redeemedOnDeal(a.entries);
  const base = { dealCurrency: deal.currency || program.currency, redeemed: fromMinor(redeemed) };
  if (!situation.ok) {
    return { view: { ...base, dealAmount: null, maxNow: 0, open: true, blocked: situation.reason }, dealTotal: null };
  }
  const { facts } = situation;
  // Exactly what POST …/redeem {amount: "max"} decides: the most allowed, checked; when nothing is,
  // the reason a request for one kopeck gets.
  const verdict = checkRedemption({ ...facts, amount: Math.max(1, mostRedeemable(facts)) });
  return {
    view: {
      ...base,
      dealAmount: fromMinor(facts.dealAmount),
      maxNow: verdict.ok ? fromMinor(mostRedeemable(facts)) : 0,
      open: facts.dealOpen,
      blocked: verdict.ok ? null : verdict.reason,
    },
    dealTotal: fromMinor(facts.dealAmount - redeemed),
  };
}
