/**
 * Redemption (SPEC 5): bonus written off against a deal. Which deals accept it, how much a deal
 * may take, and what a lost or deleted deal gives back — pure decisions over plain data, in
 * minor units.
 *
 * Stages: a deal in progress (P) or won (S) accepts a redemption — a manager often closes the deal
 * as won when the client pays, bonus included. A lost (F) or deleted deal refuses it
 * (`deal_closed`), and what was redeemed on it is returned.
 */
import { convertDealAmount, type RateRow } from './convert-currency.js';
import { percentOf } from './money.js';

export type RedemptionRefusal = 'deal_closed' | 'over_deal_limit' | 'insufficient_balance';

export interface LedgerLine {
  memberId: number;
  reason: string;
  amount: number;
}

export interface RedemptionRequest {
  /** Positive, minor units. */
  amount: number;
  /** The client's available balance now. */
  available: number;
  /** The deal's amount, minor units. */
  dealAmount: number;
  /** `redemption.maxPercentOfDeal` of the program in force. */
  maxPercentOfDeal: number;
  /** Entries already recorded against the deal (any reason; only redemptions count). */
  dealEntries: readonly LedgerLine[];
  dealOpen: boolean;
}

export type RedemptionVerdict = { ok: true } | { ok: false; reason: RedemptionRefusal };

export function dealAcceptsRedemption(deal: { stageSemantic: 'P' | 'S' | 'F'; deleted: boolean }): boolean {
  return !deal.deleted && deal.stageSemantic !== 'F';
}

/** What is redeemed on a deal now (positive): redemptions net of their returns. */
export function redeemedOnDeal(entries: readonly LedgerLine[]): number {
  return 0 - entries.filter((e) => e.reason === 'redemption').reduce((sum, e) => sum + e.amount, 0);
}

/** The most a deal may be paid with bonus in total. */
export function dealRedemptionLimit(dealAmount: number, maxPercentOfDeal: number): number {
  return Math.max(0, percentOf(dealAmount, maxPercentOfDeal));
}

/**
 * The order of the checks is the order a manager can act on them: a closed deal cannot be helped,
 * an over-limit amount is fixed by asking less, a short balance by asking less still.
 */
export function checkRedemption(r: RedemptionRequest): RedemptionVerdict {
  if (!Number.isSafeInteger(r.amount) || r.amount <= 0) throw new RangeError(`redemption amount must be a positive integer, got ${r.amount}`);
  if (!r.dealOpen) return { ok: false, reason: 'deal_closed' };
  if (redeemedOnDeal(r.dealEntries) + r.amount > dealRedemptionLimit(r.dealAmount, r.maxPercentOfDeal)) return { ok: false, reason: 'over_deal_limit' };
  if (r.amount > r.available) return { ok: false, reason: 'insufficient_balance' };
  return { ok: true };
}

/**
 * The most the client can redeem on the deal now (the robot's "empty amount", the UI's "all"):
 * what the deal's limit leaves and the balance allows; 0 or less when nothing can be.
 */
export function mostRedeemable(r: Omit<RedemptionRequest, 'amount'>): number {
  return Math.min(r.available, dealRedemptionLimit(r.dealAmount, r.maxPercentOfDeal) - redeemedOnDeal(r.dealEntries));
}

/** A deal as redemption sees it: stage, amount (minor units, its own currency) and fixed rate. */
export interface RedeemableDeal {
  stageSemantic: 'P' | 'S' | 'F';
  deleted: boolean;
  amount: number;
  /** The deal's currency; empty when the portal gave none (then the program currency). */
  currency: string;
  fxCurrency?: string | null;
  fxRate?: string | null;
}

export type RedemptionFacts = Omit<RedemptionRequest, 'amount'>;

/**
 * The facts a redemption is checked against, from what the store holds: the deal's amount in the
 * program currency (its fixed rate once won, else the portal's rates), and the balance net of
 * bonus that lapsed before the expiry run (`lapsed`, ≤ 0, from unwrittenExpiry). The redeem
 * handler decides under its locks with these, and the deal card shows `mostRedeemable` of the
 * same facts, so the form and the server agree. An open deal whose currency cannot be converted
 * is `currency_not_converted`.
 */
export function redemptionFacts(args: {
  deal: RedeemableDeal;
  programCurrency: string;
  maxPercentOfDeal: number;
  rates: RateRow[] | null;
  available: number;
  lapsed: number;
  dealEntries: readonly LedgerLine[];
}): { ok: true; facts: RedemptionFacts } | { ok: false; reason: 'currency_not_converted' } {
  const { deal, programCurrency } = args;
  const fixed = deal.fxCurrency && deal.fxRate ? { currency: deal.fxCurrency, rate: deal.fxRate } : null;
  const converted = convertDealAmount({ amount: deal.amount, from: deal.currency || programCurrency, to: programCurrency, rates: args.rates, fixed });
  const dealOpen = dealAcceptsRedemption(deal);
  if (!converted.ok && dealOpen) return { ok: false, reason: 'currency_not_converted' };
  return {
    ok: true,
    facts: {
      available: args.available + args.lapsed,
      dealAmount: converted.ok ? converted.amount : deal.amount,
      maxPercentOfDeal: args.maxPercentOfDeal,
      dealEntries: args.dealEntries,
      dealOpen,
    },
  };
}

export interface RedemptionReturn {
  memberId: number;
  /** Positive: what goes back to the member. */
  amount: number;
  idempotencyKey: string;
}

/**
 * A lost or deleted deal gives back, to each member who redeemed on it, the net of their
 * redemptions — once: after the return the net is zero, so settling again plans nothing. A deal
 * won again later does not redeem again (that is a new decision for a manager). The key depends
 * on the snapshot only, so two workers planning from one snapshot write the same key.
 */
export function redemptionReturns(args: { dealId: number; closed: boolean; entries: readonly LedgerLine[] }): RedemptionReturn[] {
  if (!args.closed) return [];
  const net = new Map<number, { sum: number; count: number }>();
  for (const e of args.entries) {
    if (e.reason !== 'redemption') continue;
    const n = net.get(e.memberId) ?? { sum: 0, count: 0 };
    n.sum += e.amount;
    n.count += 1;
    net.set(e.memberId, n);
  }
  const out: RedemptionReturn[] = [];
  for (const [memberId, { sum, count }] of [...net].sort((a, b) => a[0] - b[0])) {
    if (sum >= 0) continue;
    out.push({ memberId, amount: -sum, idempotencyKey: `deal:${args.dealId}:redemption-return:${memberId}:${count}` });
  }
  return out;
}
