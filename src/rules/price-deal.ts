/**
 * Pricing of a won deal (SPEC 5): what the deal should have paid to whom if it is won now. The
 * result is a desired state, never a delta; settleDeal turns it into ledger entries, which is how
 * repeated, reordered and reverted events end up paying exactly once.
 */
import { percentOf, toMinor } from './money.js';
import type { Program, Reward } from './program.js';

export interface ClientDeal {
  dealId: number;
  won: boolean;
  firstWonAt: Date | null;
  amount: number;
}

export interface PricingInput {
  program: Program;
  deal: { dealId: number; amount: number /* minor, already in program currency */; categoryId: number; won: boolean; wonAt: Date };
  clientMemberId: number | null;
  /** Every known deal of the same client, including this one. */
  clientDeals: ClientDeal[];
  /** chain: [direct referrer, its referrer, …] member ids. */
  referral: { createdAt: Date; chain: number[] } | null;
  now: Date;
}

export type RewardReason = 'referral' | 'welcome' | 'cashback';

export interface DesiredEntry {
  memberId: number;
  reason: RewardReason;
  /** 1-based referrer level; 0 for welcome and cashback. */
  level: number;
  amount: number;
  availableAt: Date;
}

const DAY_MS = 86_400_000;

/** The client's deals with this deal as the caller sees it now, which wins over a stale copy. */
function withDeal(deal: PricingInput['deal'], clientDeals: ClientDeal[]): ClientDeal[] {
  const stored = clientDeals.find((d) => d.dealId === deal.dealId);
  const current: ClientDeal = { dealId: deal.dealId, won: deal.won, firstWonAt: stored?.firstWonAt ?? deal.wonAt, amount: deal.amount };
  return [...clientDeals.filter((d) => d.dealId !== deal.dealId), current];
}

function firstWonDealId(deals: ClientDeal[]): number | null {
  let best: ClientDeal | null = null;
  // A won deal without a first-won time sorts last: it cannot have been won before one that has.
  const at = (d: ClientDeal) => d.firstWonAt?.getTime() ?? Number.POSITIVE_INFINITY;
  for (const d of deals) {
    if (!d.won) continue;
    if (!best || at(d) < at(best) || (at(d) === at(best) && d.dealId < best.dealId)) best = d;
  }
  return best?.dealId ?? null;
}

/**
 * Whether the deal is the one (first_won_deal) or one of those (every_won_deal) the referral
 * pays for. first_won_deal looks at the deals won now, so when the first one is un-won the next
 * won deal takes its place, and the net invariant moves the reward there.
 */
export function qualifies(program: Program, deal: PricingInput['deal'], referralCreatedAt: Date, clientDeals: ClientDeal[]): boolean {
  if (!deal.won) return false;
  const deals = withDeal(deal, clientDeals);
  if (program.referral.qualify === 'every_won_deal') {
    // firstWonAt, not the latest win: re-winning a deal must not move it into or out of the window.
    const wonAt = deals.find((d) => d.dealId === deal.dealId)?.firstWonAt ?? deal.wonAt;
    const start = referralCreatedAt.getTime();
    return wonAt.getTime() >= start && wonAt.getTime() <= start + program.referral.windowDays * DAY_MS;
  }
  return firstWonDealId(deals) === deal.dealId;
}

function rewardAmount(reward: Reward, dealAmount: number): number {
  return 'percent' in reward ? percentOf(dealAmount, reward.percent) : (toMinor(reward.fixed) ?? 0);
}

/** What tiers count: won deals, or their lifetime amount in minor units. */
function tierValue(program: Program, clientDeals: ClientDeal[]): number {
  const won = clientDeals.filter((d) => d.won);
  return program.tiers.basis === 'won_count' ? won.length : won.reduce((sum, d) => sum + d.amount, 0);
}

function tierIndex(program: Program, clientDeals: ClientDeal[]): number {
  const { basis, levels } = program.tiers;
  const value = tierValue(program, clientDeals);
  let index = -1;
  levels.forEach((level, i) => {
    const threshold = basis === 'won_count' ? level.from : (toMinor(level.from) ?? Number.POSITIVE_INFINITY);
    if (threshold <= value) index = i;
  });
  return index;
}

/**
 * The client's loyalty tier by the deals won now, and the next one up (`from` as written in the
 * program: an amount in the program currency or a deal count). Null when the program has no
 * tiers or the client has not reached the first one.
 */
export function tierFor(program: Program, clientDeals: ClientDeal[]): { name: string; next: { name: string; from: number } | null } | null {
  const index = tierIndex(program, clientDeals);
  const tier = program.tiers.levels[index];
  if (!tier) return null;
  const next = program.tiers.levels[index + 1];
  return { name: tier.name, next: next ? { name: next.name, from: next.from } : null };
}

/**
 * Where the client stands on the way to the next tier, counted exactly as tierFor counts: `value`
 * is the won deal count or the won amount in minor units; `nextFrom` the next tier's `from` as
 * written in the program (null at the top). Null when the program has no tiers.
 */
export function tierProgressFor(program: Program, clientDeals: ClientDeal[]): { basis: Program['tiers']['basis']; value: number; nextFrom: number | null } | null {
  const { basis, levels } = program.tiers;
  if (!levels.length) return null;
  return { basis, value: tierValue(program, clientDeals), nextFrom: levels[tierIndex(program, clientDeals) + 1]?.from ?? null };
}

function referralRewards(input: PricingInput, chain: number[]): { memberId: number; level: number; amount: number }[] {
  const { program, deal } = input;
  const levels = program.referral.levels.slice(0, chain.length);
  const amounts = levels.map((level) => rewardAmount(level, deal.amount));
  const cap = program.referral.capPerReferral === null ? null : toMinor(program.referral.capPerReferral);
  if (cap !== null) {
    // The direct referrer did the referring; deeper levels give way first.
    let excess = amounts.reduce((sum, a) => sum + a, 0) - cap;
    for (let i = amounts.length - 1; i >= 0 && excess > 0; i--) {
      const cut = Math.min(excess, amounts[i] ?? 0);
      amounts[i] = (amounts[i] ?? 0) - cut;
      excess -= cut;
    }
  }
  return amounts.map((amount, i) => ({ memberId: chain[i] ?? 0, level: i + 1, amount }));
}

function referralApplies(input: PricingInput): input is PricingInput & { referral: NonNullable<PricingInput['referral']> } {
  const { program, deal, referral } = input;
  const rules = program.referral;
  if (!rules.enabled || !referral) return false;
  if (deal.amount < (toMinor(rules.minDealAmount) ?? 0)) return false;
  if (rules.categories.length > 0 && !rules.categories.includes(deal.categoryId)) return false;
  return qualifies(program, deal, referral.createdAt, input.clientDeals);
}

/**
 * What a deal pays if it is won now. capPerReferrerMonth is not applied here: it depends on what
 * the referrer earned from other deals this month, which only the store knows.
 */
export function priceDeal(input: PricingInput): DesiredEntry[] {
  const { program, deal, clientMemberId, now } = input;
  if (!deal.won) return [];
  const entries: DesiredEntry[] = [];
  const afterHold = new Date(now.getTime() + program.referral.holdDays * DAY_MS);

  if (referralApplies(input)) {
    for (const reward of referralRewards(input, input.referral.chain)) {
      entries.push({ ...reward, reason: 'referral', availableAt: afterHold });
    }
    if (program.referral.referee && clientMemberId !== null) {
      const amount = rewardAmount(program.referral.referee, deal.amount);
      entries.push({ memberId: clientMemberId, reason: 'welcome', level: 0, amount, availableAt: afterHold });
    }
  }

  if (program.cashback.enabled && clientMemberId !== null) {
    const tier = program.tiers.levels[tierIndex(program, withDeal(deal, input.clientDeals))];
    const percent = tier ? tier.cashbackPercent : (program.cashback.percent ?? 0);
    entries.push({ memberId: clientMemberId, reason: 'cashback', level: 0, amount: percentOf(deal.amount, percent), availableAt: new Date(now.getTime()) });
  }

  // A won deal never takes bonus away: a zero or negative amount (a refund booked as a deal) pays nothing.
  return entries.filter((e) => e.amount > 0);
}
