/**
 * POST /api/deals/:id/redeem (SPEC 3, 5 "Redemption"): the deal's client pays part of the deal
 * with available bonus. One ledger entry (reason `redemption`, negative, available at once) in a
 * transaction that holds the client's and the deal's advisory locks — the same `client:<member>`
 * lock the referral loop settles under — so concurrent redemptions (and a concurrent reversal)
 * are serialized and the balance and the deal's limit are checked against committed state: two
 * redemptions can never spend the same bonus, on PGlite or PostgreSQL.
 *
 * The deal as Sarafan last saw it decides its stage, amount and client; a deal Sarafan does not
 * know yet (or whose client was not in the program then) is read through the CRM port and run
 * through the referral loop first, so it is known, priced and projected like any other. Stages
 * accepting a redemption: in progress and won (src/rules/redemption.ts); lost or deleted refuse.
 * A lost or deleted deal returns what was redeemed (process-crm-changes.ts).
 *
 * Idempotency: with a client key (`Idempotency-Key`), a retry answers the first redemption again
 * instead of spending twice. A deal in another currency than the program's is limited by its
 * amount converted like the loop converts it (its fixed rate once won, else the portal's rates);
 * one the portal has no rate for is refused (`currency_not_converted`).
 * Timeline feedback: a comment on the deal and on the client, recorded in the redemption's
 * transaction and sent by the crm.feedback job.
 */
import type { RedeemAnswer as ContractRedeemAnswer } from '../contract/api.js';
import { unwrittenExpiry } from '../rules/expiry.js';
import { fromMinor } from '../rules/money.js';
import { checkRedemption, mostRedeemable, redeemedOnDeal, redemptionFacts, type RedemptionRefusal } from '../rules/redemption.js';
import { enqueueFeedback } from './enqueue-feedback.js';
import { AppError } from './errors.js';
import { ledgerItems, personOf } from './ledger-view.js';
import { processCrmChanges } from './process-crm-changes.js';
import { portalRates } from './program-keys.js';
import { currentProgram } from './program-versions.js';
import { oweProjections, projectNow } from './project-after-commit.js';
import type { DealState, Deps, Installation, PersonRef } from './ports.js';

export interface RedeemCommand {
  dealId: number;
  /** Positive, minor units; `max`: the most the deal and the balance allow, decided under the lock. */
  amount: number | 'max';
  /** Who asks (the API caller). */
  userId: number;
  /** The client's key for a safe retry (Idempotency-Key). */
  clientKey?: string;
}

/** What happened, in domain terms: enough for a timeline comment on the deal and the client. */
export interface RedemptionFacts {
  portalId: number;
  dealId: number;
  client: PersonRef;
  memberId: number;
  userId: number;
  /** Minor units. */
  amount: number;
  balanceAfter: number;
  dealRedeemed: number;
  entryId: number;
  /** False when this answers a retried request (the redemption happened before). */
  fresh: boolean;
}

/** The contract's answer, plus `facts` (not part of the JSON answer: for the caller that reports it). */
export interface RedeemAnswer extends ContractRedeemAnswer {
  facts: RedemptionFacts;
}

const REFUSALS: Record<RedemptionRefusal | 'currency_not_converted' | 'deal_changed', string> = {
  deal_closed: 'The deal is lost or deleted: bonus cannot be redeemed against it',
  over_deal_limit: 'The amount is more than the program allows to redeem on this deal',
  insufficient_balance: "The client's available bonus is less than the amount",
  currency_not_converted: "The portal has no rate to convert the deal's currency into the program currency",
  // The deal moved to another client between reading it and locking: the caller asks again.
  deal_changed: 'The deal changed while redeeming; try again',
};

const refuse = (reason: keyof typeof REFUSALS, extra = ''): AppError => new AppError('conflict', REFUSALS[reason] + extra, [], { reason });

export async function redeemBonus(deps: Deps, installation: Installation, cmd: RedeemCommand): Promise<RedeemAnswer> {
  const { store } = deps;
  const portalId = installation.id;
  let deal = await store.deals.get(portalId, cmd.dealId);
  if (!deal || (deal.clientMemberId === null && !deal.deleted)) deal = await learnDeal(deps, installation, cmd.dealId, deal);
  if (deal.deleted || deal.stageSemantic === 'F') throw refuse('deal_closed');
  const memberId = deal.clientMemberId;
  if (memberId === null) throw refuse('insufficient_balance', ' (the client is not in the program)');
  const client = personOf(await store.members.get(portalId, memberId));
  if (!client) throw new AppError('not_found', `Deal ${cmd.dealId} has no client`);

  // Rates are read before the locks (a REST request never runs inside the transaction).
  const { program: inForce } = await currentProgram(store.programs, portalId, deps.clock.now());
  const rates = deal.currency && deal.currency !== inForce.currency ? await portalRates(deps, installation) : null;

  const key = `redeem:${cmd.dealId}:${cmd.clientKey === undefined ? `r:${Buffer.from(deps.randomBytes(12)).toString('hex')}` : `key:${cmd.clientKey}`}`;
  const outcome = await store.transaction(async (tx) => {
    await tx.lockMany(portalId, [`client:${memberId}`, `deal:${cmd.dealId}`]);
    const now = deps.clock.now();
    const { program } = await currentProgram(tx.programs, portalId, now);
    // Under the locks: what the loop or another redemption committed before us is seen here.
    // One after another: a transaction is one connection.
    const state = await tx.deals.get(portalId, cmd.dealId);
    const entries = await tx.ledger.forDeal(portalId, cmd.dealId);
    const balances = await tx.ledger.balances(portalId, [memberId], now);
    // Bonus that lapsed before the hourly expiry run is not there to spend (src/rules/expiry.ts).
    const lapsed = unwrittenExpiry(await tx.ledger.forMembers(portalId, [memberId]), now);
    const previous = entries.find((e) => e.idempotencyKey === key);
    if (previous) return { entry: previous, entries, fresh: false, currency: program.currency, now };
    if (!state || state.clientMemberId !== memberId) throw refuse('deal_changed');
    const situation = redemptionFacts({
      deal: state,
      programCurrency: program.currency,
      maxPercentOfDeal: program.redemption.maxPercentOfDeal,
      rates,
      available: balances.get(memberId)?.available ?? 0,
      lapsed,
      dealEntries: entries,
    });
    if (!situation.ok) throw refuse(situation.reason);
    const { facts } = situation;
    // Nothing redeemable: asking for one kopeck yields the reason why.
    const amount = cmd.amount === 'max' ? Math.max(1, mostRedeemable(facts)) : cmd.amount;
    const verdict = checkRedemption({ ...facts, amount });
    if (!verdict.ok) throw refuse(verdict.reason);
    const { inserted } = await tx.ledger.append([
      {
        portalId,
        memberId,
        amount: -amount,
        reason: 'redemption',
        kind: 'correction',
        dealId: cmd.dealId,
        level: 0,
        programVersion: null,
        idempotencyKey: key,
        availableAt: now,
        expiresAt: null,
        causedBy: `user:${cmd.userId}`,
        comment: null,
        createdAt: now,
      },
    ]);
    const entry = inserted[0]!; // the key is fresh or ours, and was not found above under the lock
    // "Bonus redeemed on this deal", on the deal's and the client's timelines: recorded with the
    // entry, so it is told once, whatever the retries (the crm.feedback job sends it).
    const told = { type: 'redeemed' as const, amount, currency: program.currency, dealId: cmd.dealId };
    await enqueueFeedback(
      tx,
      portalId,
      [
        { key: `entry:${entry.id}:deal`, to: { entity: 'deal', id: cmd.dealId }, event: told },
        { key: `entry:${entry.id}:person`, to: { entity: client.entity, id: client.id }, event: told },
      ],
      now,
    );
    const jobKey = await oweProjections(deps, tx, portalId, { memberIds: [memberId], dealIds: [cmd.dealId] }, now);
    return { entry, entries: [...entries, entry], fresh: true, jobKey, currency: program.currency, now };
  });

  if (outcome.fresh) {
    deps.log.info({ portalId, dealId: cmd.dealId, memberId, amount: -outcome.entry.amount, userId: cmd.userId }, 'redemption.recorded');
    await projectNow(deps, installation, { memberIds: [memberId], dealIds: [cmd.dealId] }, outcome.jobKey!);
  }
  const now = outcome.now;
  const balance = (await store.ledger.balances(portalId, [memberId], now)).get(memberId) ?? { available: 0, pending: 0 };
  const [item] = await ledgerItems(store, portalId, [outcome.entry], now, outcome.entries);
  const dealRedeemed = redeemedOnDeal(outcome.entries);
  return {
    dealId: cmd.dealId,
    currency: outcome.currency,
    entry: item!,
    client: { ...client, balance: fromMinor(balance.available), pending: fromMinor(balance.pending) },
    dealRedeemed: fromMinor(dealRedeemed),
    facts: {
      portalId,
      dealId: cmd.dealId,
      client,
      memberId,
      userId: cmd.userId,
      amount: -outcome.entry.amount,
      balanceAfter: balance.available,
      dealRedeemed,
      entryId: outcome.entry.id,
      fresh: outcome.fresh,
    },
  };
}

/**
 * A deal Sarafan does not know (or knew without a client in the program): read it through the CRM
 * port — 404 when the portal has no such deal or it has no client — and let the referral loop
 * record it, as its ONCRMDEALADD event would have.
 */
async function learnDeal(deps: Deps, installation: Installation, dealId: number, known: DealState | null): Promise<DealState> {
  const read = (await deps.crm.forInstallation(installation).read({ deals: [dealId], people: [] })).deals.get(dealId)!;
  if (read.status === 'failed') throw new AppError('portal_unavailable', `The portal did not answer for deal ${dealId}`);
  if (read.status === 'not_found') {
    if (known) return { ...known, deleted: true };
    throw new AppError('not_found', `Deal ${dealId} not found`);
  }
  if (!read.record.client) throw new AppError('not_found', `Deal ${dealId} has no client (contact or lead)`);
  const [outcome] = await processCrmChanges(deps, installation.id, [{ entity: 'deal', id: dealId, deleted: false }]);
  if (!outcome?.ok) throw new AppError('portal_unavailable', `The portal did not answer for deal ${dealId}`);
  const state = await deps.store.deals.get(installation.id, dealId);
  if (!state) throw new AppError('not_found', `Deal ${dealId} not found`);
  // The loop records a deal's client only once the client is in the program (null otherwise).
  return state;
}
