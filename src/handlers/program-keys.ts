/**
 * The program keys the referral loop applies on its way from pricing to the ledger (SPEC 5.1),
 * kept apart from process-crm-changes.ts, which calls them inside its load → decide → write run:
 * conversion of deals in another currency (priceOne), the referrer's monthly cap in the portal's
 * time zone (capMonths, requeueCappedDeals), milestone coupons (settleCoupons), and the portal's
 * settings those need, read through the CRM port and cached a day per portal (SettingsCache).
 * The decisions themselves are pure rules in src/rules; these load and write around them.
 */
import { generateCode } from '../rules/codes.js';
import { monthOf } from '../rules/cap-referrer-month.js';
import { clampOverspend } from '../rules/clamp-overspend.js';
import { convertDealAmount } from '../rules/convert-currency.js';
import { issueCoupons } from '../rules/issue-coupons.js';
import { toMinor } from '../rules/money.js';
import { priceDeal, type DesiredEntry } from '../rules/price-deal.js';
import { crmChangeJob } from './crm-change-job.js';
import { clientDealsOf, inProgramCurrency } from './member-summaries.js';
import type { LoadedProgram } from './program-versions.js';
import type { CrmRead, CurrencyRate, DealState, Deps, FxUsed, Installation, LedgerEntry, NewLedgerEntry, PortalSettings, Referral, TxRepos } from './ports.js';

const COUPON_CODE_ATTEMPTS = 8;

export const monthKey = (memberId: number, from: Date): string => `${memberId}:${from.toISOString()}`;

/**
 * What one deal pays if it is won now, in the program currency of the version that priced it:
 * a deal in another currency is converted with the rate fixed on its first win, else with the
 * portal's rates of today (then fixed). A deal that cannot be converted pays nothing (logged).
 */
export function priceOne(
  deps: Deps,
  portalId: number,
  deal: DealState,
  loaded: LoadedProgram,
  settings: PortalSettings | null,
  now: Date,
  dealsOf: Map<number, DealState[]>,
  referrals: Map<number, Referral>,
  chains: Map<number, number[]>,
): { desired: DesiredEntry[]; fx: FxUsed | null; fixRate: { currency: string; rate: string } | null } {
  const { program } = loaded;
  const won = deal.won && !deal.deleted;
  let amount = deal.amount;
  let fx: FxUsed | null = null;
  let fixRate: { currency: string; rate: string } | null = null;
  if (deal.currency !== program.currency) {
    const fixed = deal.fxCurrency && deal.fxRate ? { currency: deal.fxCurrency, rate: deal.fxRate } : null;
    const converted = convertDealAmount({ amount: deal.amount, from: deal.currency, to: program.currency, rates: settings?.currencies ?? null, fixed });
    if (!converted.ok) {
      if (won) deps.log.warn({ portalId, dealId: deal.dealId, currency: deal.currency, programCurrency: program.currency }, 'reward.currency_not_converted');
      return { desired: [], fx: null, fixRate: null };
    }
    amount = converted.amount;
    fx = { currency: deal.currency, rate: converted.rate, amount: deal.amount };
    if (won) fixRate = { currency: deal.currency, rate: converted.rate };
  }
  const client = deal.clientMemberId;
  const referral = client !== null ? (referrals.get(client) ?? null) : null;
  const desired = priceDeal({
    program,
    deal: { dealId: deal.dealId, amount, categoryId: deal.categoryId, won, wonAt: deal.firstWonAt ?? now },
    clientMemberId: client,
    clientDeals: client !== null ? clientDealsOf((dealsOf.get(client) ?? []).map((d) => inProgramCurrency(d, program.currency, settings))) : [],
    referral: referral && client !== null ? { createdAt: referral.createdAt, chain: (chains.get(client) ?? []).slice(0, program.referral.levels.length) } : null,
    now,
  });
  return { desired, fx, fixRate };
}

/** The (referrer, month) pairs the monthly cap has to look at for these priced deals. */
export function capMonths(
  priced: { deal: DealState; loaded: LoadedProgram; desired: DesiredEntry[] }[],
  existingOf: Map<number, LedgerEntry[]>,
  settings: PortalSettings | null,
): { memberId: number; from: Date; to: Date }[] {
  if (!settings) return [];
  const out = new Map<string, { memberId: number; from: Date; to: Date }>();
  for (const { deal, loaded, desired } of priced) {
    if (loaded.program.referral.capPerReferrerMonth === null || !deal.firstWonAt) continue;
    const month = monthOf(deal.firstWonAt, settings.utcOffsetMinutes);
    const referrers = [...desired.filter((d) => d.reason === 'referral'), ...(existingOf.get(deal.dealId) ?? []).filter((e) => e.reason === 'referral')].map((e) => e.memberId);
    for (const memberId of referrers) out.set(monthKey(memberId, month.from), { memberId, ...month });
  }
  return [...out.values()];
}

/**
 * A run that lowered a referrer's credits in a capped month freed room there: the referrer's
 * deals of that month still held back by the cap are queued to be settled again (durable jobs in
 * this transaction), so the freed room reaches them whichever event comes next.
 */
export async function requeueCappedDeals(
  deps: Deps,
  tx: TxRepos,
  portalId: number,
  now: Date,
  inserted: LedgerEntry[],
  months: { memberId: number; from: Date; to: Date }[],
  settings: PortalSettings | null,
): Promise<void> {
  if (!settings || !months.length) return;
  const lowered = new Set(inserted.filter((e) => e.reason === 'referral' && e.amount < 0).map((e) => e.memberId));
  const freed = months.filter((m) => lowered.has(m.memberId));
  if (!freed.length) return;
  const settledNow = new Set(inserted.map((e) => e.dealId));
  for (const dealId of await tx.ledger.cappedDeals(portalId, freed)) {
    if (settledNow.has(dealId)) continue;
    await tx.jobs.enqueue(crmChangeJob(portalId, 'deal', dealId), now);
    deps.log.info({ portalId, dealId }, 'reward.cap_room_freed');
  }
}

const SETTINGS_TTL_MS = 86_400_000;

/**
 * The portal's settings as cached in the store: re-read through the CRM port once a day (by the
 * injected clock). A failed read keeps the stale copy; with none, a capped program cannot tell
 * months apart and a foreign-currency deal cannot be converted, so both wait (logged).
 */
export class SettingsCache {
  constructor(
    private cached: PortalSettings | null,
    private readonly now: Date,
  ) {}

  get value(): PortalSettings | null {
    return this.cached;
  }

  get fresh(): boolean {
    return this.cached !== null && this.now.getTime() - this.cached.readAt.getTime() < SETTINGS_TTL_MS;
  }

  /** Read them with the batch when stale and either the program has a monthly cap or they were needed before. */
  wantedWith(program: LoadedProgram['program']): boolean {
    return !this.fresh && (program.referral.capPerReferrerMonth !== null || this.cached !== null);
  }

  async take(deps: Deps, portalId: number, answer: CrmRead<Omit<PortalSettings, 'readAt'>> | undefined): Promise<void> {
    if (!answer) return;
    if (answer.status !== 'found') {
      deps.log.warn({ portalId, error: answer.status === 'failed' ? answer.error : 'not_found', stale: this.cached !== null }, 'portal.settings_unread');
      return;
    }
    this.cached = { ...answer.record, readAt: this.now };
    await deps.store.portalSettings.save(portalId, this.cached);
  }
}

/**
 * Milestone coupons of the referrers whose direct referral rewards this run changed
 * (src/rules/issue-coupons.ts), in the same transaction: counted from the ledger as just written,
 * under a per-referrer lock so two runs for two referees of one referrer count one after the other.
 * A coupon's credit and reversal name the deal whose change crossed the milestone.
 */
export async function settleCoupons(deps: Deps, tx: TxRepos, portalId: number, current: LoadedProgram, now: Date, inserted: LedgerEntry[]): Promise<LedgerEntry[]> {
  const rule = current.program.coupons;
  if (!rule) return [];
  const trigger = new Map<number, number>();
  for (const e of inserted) if (e.reason === 'referral' && e.level === 1 && e.dealId !== null && !trigger.has(e.memberId)) trigger.set(e.memberId, e.dealId);
  if (!trigger.size) return [];
  const referrers = [...trigger.keys()];
  await tx.lockMany(portalId, referrers.map((id) => `coupons:${id}`));
  const [qualified, rows, entries] = await Promise.all([
    tx.referrals.qualifiedCount(portalId, referrers),
    tx.coupons.forMembers(portalId, referrers),
    tx.ledger.couponEntries(portalId, referrers),
  ]);
  const valueMinor = toMinor(rule.value) ?? 0;
  const plans = referrers.map((memberId) => ({
    memberId,
    plan: issueCoupons({
      memberId,
      rule: { everyReferrals: rule.everyReferrals, valueMinor },
      qualified: qualified.get(memberId) ?? 0,
      coupons: rows.filter((c) => c.memberId === memberId),
      entries: entries.filter((e) => e.memberId === memberId),
    }),
  }));

  const codeOf = new Map(rows.map((c) => [`${c.memberId}:${c.milestone}`, c.code]));
  let open = plans.flatMap(({ memberId, plan }) => plan.issue.map((i) => ({ memberId, ...i })));
  for (let attempt = 0; open.length && attempt < COUPON_CODE_ATTEMPTS; attempt++) {
    const { issued, taken } = await tx.coupons.issueMany(portalId, open.map((o) => ({ ...o, code: generateCode(deps.randomBytes, { length: 8 }) })), now);
    for (const c of issued) {
      codeOf.set(`${c.memberId}:${c.milestone}`, c.code);
      deps.log.info({ portalId, memberId: c.memberId, milestone: c.milestone }, 'coupon.issued');
    }
    const retry = new Set(taken.map((t) => `${t.memberId}:${t.milestone}`));
    open = open.filter((o) => retry.has(`${o.memberId}:${o.milestone}`));
  }
  if (open.length) throw new Error(`Could not find free coupon codes after ${COUPON_CODE_ATTEMPTS} attempts`);
  for (const status of ['issued', 'reversed'] as const) {
    const ids = plans.flatMap(({ plan }) => plan.status.filter((c) => c.status === status).map((c) => c.id));
    await tx.coupons.setStatus(portalId, ids, status, now);
    if (ids.length) deps.log.info({ portalId, coupons: ids }, status === 'issued' ? 'coupon.reissued' : 'coupon.reversed');
  }

  const planned = plans.flatMap(({ memberId, plan }) => plan.entries.map((e) => ({ memberId, ...e })));
  const negative = [...new Set(planned.filter((p) => p.amount < 0).map((p) => p.memberId))];
  const held = new Map<number, number>();
  if (current.program.overspend === 'clamp' && negative.length) {
    for (const [id, b] of await tx.ledger.balances(portalId, negative, now)) held.set(id, b.available + b.pending);
  }
  const { inserted: written } = await tx.ledger.append(
    clampOverspend(current.program.overspend, planned, held).map((p): NewLedgerEntry => {
      const dealId = trigger.get(p.memberId)!;
      return {
        portalId,
        memberId: p.memberId,
        amount: p.amount,
        reason: 'coupon',
        kind: p.kind,
        dealId,
        level: p.milestone,
        programVersion: current.version,
        idempotencyKey: p.idempotencyKey,
        availableAt: now,
        expiresAt: null,
        causedBy: `deal:${dealId}`,
        comment: `coupon ${codeOf.get(`${p.memberId}:${p.milestone}`) ?? ''}`.trim(),
        createdAt: now,
        shortfall: p.shortfall,
      };
    }),
  );
  return written;
}

/** Thrown inside the money transaction when a capped deal needs the portal's zone and none is known. */
export class SettingsNeeded extends Error {
  constructor() {
    super('The portal settings (time zone) could not be read: the monthly referrer cap cannot be applied');
  }
}

/**
 * The portal's currency rates for a request outside the loop (a preview, a redemption): the ones
 * the loop cached, else read once through the CRM port and cached the same way. Never called
 * inside a transaction (it may make a REST request).
 */
export async function portalRates(deps: Deps, installation: Installation): Promise<CurrencyRate[] | null> {
  const settings = new SettingsCache(await deps.store.portalSettings.get(installation.id), deps.clock.now());
  if (!settings.fresh) await settings.take(deps, installation.id, (await deps.crm.forInstallation(installation).read({ deals: [], people: [], settings: true })).settings);
  return settings.value?.currencies ?? null;
}
