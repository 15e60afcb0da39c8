/**
 * What a program would pay for one hypothetical won deal (SPEC 3 `POST /api/program/preview`,
 * SPEC 7's live preview "a won referred deal of 100 000 ₽ pays …"). It runs priceDeal — the rule
 * the loop prices real deals with — over a made-up client and referral chain, so the preview and
 * the ledger can never disagree.
 *
 * The hypothetical deal is the client's first won deal (so `first_won_deal` qualifies and a tier
 * is reached by this deal alone), won now, in a pipeline that counts. What only the store knows
 * is not in it: the monthly cap per referrer (it depends on other deals this month). A deal in
 * another currency is converted with the portal's rates, as the loop converts a won deal.
 */
import { convertDealAmount, type RateRow } from './convert-currency.js';
import { priceDeal, type DesiredEntry } from './price-deal.js';
import type { Program } from './program.js';

export interface PreviewDeal {
  /** Minor units. */
  amount: number;
  currency: string;
  /** Length of the referral chain above the client: 0 = not referred, 1 = a direct referrer, … */
  depth: number;
  /** Pipeline id; default: one that counts (the program's first listed, else 0). */
  categoryId?: number;
}

export type Beneficiary = 'referrer' | 'referee' | 'client';

export interface PreviewEntry {
  beneficiary: Beneficiary;
  reason: DesiredEntry['reason'];
  /** Referrer level, 1 = the direct referrer; 0 for the referee and the client. */
  level: number;
  /** Minor units, what would be credited. */
  amount: number;
  /** Minor units the program's cap per referral cut from this entry (it may have cut it to 0). */
  capped: number;
  status: 'pending' | 'available';
  availableAt: Date;
}

export type PreviewResult =
  /** `fx`: the conversion used when the deal is in another currency (the amount in its currency). */
  | { priced: true; entries: PreviewEntry[]; total: number; fx: { currency: string; rate: string; amount: number } | null }
  /** The portal has no usable rate for the deal's currency. */
  | { priced: false; reason: 'currency_not_converted'; entries: []; total: 0; fx: null };

const CLIENT = 0;

function beneficiaryOf(e: DesiredEntry): Beneficiary {
  if (e.reason === 'referral') return 'referrer';
  return e.reason === 'welcome' ? 'referee' : 'client';
}

export function previewDeal(program: Program, deal: PreviewDeal, now: Date, rates: RateRow[] | null = null): PreviewResult {
  const converted = convertDealAmount({ amount: deal.amount, from: deal.currency, to: program.currency, rates, fixed: null });
  if (!converted.ok) return { priced: false, reason: 'currency_not_converted', entries: [], total: 0, fx: null };
  const amount = converted.amount;
  const fx = deal.currency === program.currency ? null : { currency: deal.currency, rate: converted.rate, amount: deal.amount };
  const chain = Array.from({ length: Math.min(deal.depth, program.referral.levels.length) }, (_, i) => i + 1);
  const dealId = 1;
  const categoryId = deal.categoryId ?? program.referral.categories[0] ?? 0;
  const price = (p: Program) =>
    priceDeal({
      program: p,
      deal: { dealId, amount, categoryId, won: true, wonAt: now },
      clientMemberId: CLIENT,
      clientDeals: [{ dealId, won: true, firstWonAt: now, amount }],
      referral: chain.length ? { createdAt: now, chain } : null,
      now,
    });
  const paid = price(program);
  // The same deal without the cap shows what the cap took, level by level.
  const uncapped = program.referral.capPerReferral === null ? paid : price({ ...program, referral: { ...program.referral, capPerReferral: null } });
  const key = (e: DesiredEntry) => `${e.reason}:${e.level}`;
  const paidBy = new Map(paid.map((e) => [key(e), e]));
  const entries = uncapped.map((full): PreviewEntry => {
    const e = paidBy.get(key(full));
    const amount = e?.amount ?? 0;
    const availableAt = e?.availableAt ?? full.availableAt;
    return {
      beneficiary: beneficiaryOf(full),
      reason: full.reason,
      level: full.level,
      amount,
      capped: full.amount - amount,
      status: availableAt.getTime() > now.getTime() ? 'pending' : 'available',
      availableAt,
    };
  });
  return { priced: true, entries, total: entries.reduce((sum, e) => sum + e.amount, 0), fx };
}
