/**
 * The `robot.run` job (issue 10): answer one automation robot call. Load the call and its
 * document (a deal's client is its contact, else its lead; a lead is its own client; `percent`
 * reads the deal's or lead's amount, converted into the program currency) through the
 * CRM port → decide and act through the same use cases as the API (adjust-balance for accrue,
 * redeem-bonus, enroll-member, activate-promo-code, read-member for status: ledger keys make every
 * action idempotent per event token) → store the answer once, then send it with
 * `bizproc.event.send` plus a `bizproc.activity.log` line, through the portal gateway's batch.
 *
 * Every call is answered, failures included (`ok` = N and `error` in the portal's language), so
 * the automation never waits in vain. Only a failure to reach the portal is retried by the queue;
 * on the job's last attempt a call that still cannot be decided is answered ok = N "try again".
 * Known limit: an answer that cannot be sent on the last attempt either (the portal unreachable
 * for the whole back-off, about 21 min over 8 attempts) is lost with the dead job, as Bitrix24
 * itself would lose a call to an unreachable handler.
 * The answer is stored before it is sent, so a retried job sends the same answer and never acts
 * twice; once the portal took it (or refused the token as used), the call is done.
 */
import { portalLang } from '../rules/referral-landing.js';
import { robotAmount, robotDocument, robotError, robotLog, robotMoney, robotPercent, percentOfDeal, type RobotFailure } from '../rules/robot-calls.js';
import { adjustBalance } from './adjust-balance.js';
import { enrollMember } from './enroll-member.js';
import { activatePromoCode } from './activate-promo-code.js';
import { AppError, PortalCallError } from './errors.js';
import { convertDealAmount } from '../rules/convert-currency.js';
import { currentProgram } from './program-versions.js';
import { portalRates } from './program-keys.js';
import { readMember } from './read-member.js';
import { redeemBonus } from './redeem-bonus.js';
import type { CrmDeal, Deps, Installation, PersonRef, RobotAnswer, RobotCall, RobotReturnValues } from './ports.js';

/** The robot could not act: answered with ok = N. */
class RobotRefusal extends Error {
  constructor(readonly failure: RobotFailure) {
    super(failure.reason);
  }
}

const refuse = (failure: RobotFailure): never => {
  throw new RobotRefusal(failure);
};

interface Target {
  /** The deal when the document is one. */
  deal: CrmDeal | null;
  client: PersonRef;
  /** The document's amount (a deal's or a lead's OPPORTUNITY, minor units) and currency; null when it has none. */
  amount: { amount: number; currency: string } | null;
}

/** Empty return values of each robot (SPEC 4.4): a refusal still returns every key. */
const EMPTY: Record<RobotCall['code'], RobotReturnValues> = {
  sarafan_accrue: { accrued: '0.00', balance: '', entry_id: '' },
  sarafan_redeem: { redeemed: '0.00', balance: '' },
  sarafan_status: { code: '', link: '', balance: '', pending: '', tier: '', referrals: '' },
  sarafan_enroll: { code: '', link: '' },
  sarafan_promo: { accrued: '0.00', balance: '' },
};

async function resolveTarget(deps: Deps, installation: Installation, call: RobotCall): Promise<Target> {
  const doc = robotDocument(call.documentId);
  if (doc.entity === 'other') return refuse({ reason: 'not_deal_or_lead' });
  const crm = deps.crm.forInstallation(installation);
  if (doc.entity === 'lead') {
    const read = (await crm.read({ deals: [], people: [{ entity: 'lead', id: doc.id }] })).people.get(`lead:${doc.id}`)!;
    if (read.status === 'failed') throw new AppError('portal_unavailable', `The portal did not answer for lead ${doc.id}`);
    if (read.status === 'not_found') return refuse({ reason: 'document_not_found' });
    return { deal: null, client: { entity: 'lead', id: doc.id }, amount: read.record.opportunity };
  }
  const read = (await crm.read({ deals: [doc.id], people: [] })).deals.get(doc.id)!;
  if (read.status === 'failed') throw new AppError('portal_unavailable', `The portal did not answer for deal ${doc.id}`);
  if (read.status === 'not_found') return refuse({ reason: 'document_not_found' });
  if (!read.record.client) return refuse({ reason: 'no_client' });
  const { amount, currency } = read.record;
  return { deal: read.record, client: read.record.client, amount: amount > 0 ? { amount, currency } : null };
}

const prop = (call: RobotCall, key: string): string => (call.properties[key] ?? '').trim();

/**
 * The document's amount in the program currency, converted as the loop converts deals
 * (src/rules/convert-currency.ts): a won deal's fixed rate first, else the portal's rates (cached,
 * read through the CRM port when stale). A lead has no fixed rate. Read before any transaction.
 */
async function amountInProgramCurrency(deps: Deps, installation: Installation, target: Target, document: NonNullable<Target['amount']>): Promise<number> {
  const { program } = await currentProgram(deps.store.programs, installation.id, deps.clock.now());
  const from = document.currency || program.currency;
  if (from === program.currency) return document.amount;
  const state = target.deal ? await deps.store.deals.get(installation.id, target.deal.id) : null;
  const fixed = state?.fxCurrency && state.fxRate ? { currency: state.fxCurrency, rate: state.fxRate } : null;
  const rates = fixed && fixed.currency === from ? null : await portalRates(deps, installation);
  const converted = convertDealAmount({ amount: document.amount, from, to: program.currency, rates, fixed });
  return converted.ok ? converted.amount : refuse({ reason: 'currency_not_converted' });
}

async function act(deps: Deps, installation: Installation, call: RobotCall, target: Target): Promise<{ values: RobotReturnValues; done: string }> {
  const userId = call.userId ?? 0;
  const key = `robot:${call.tokenHash}`;
  switch (call.code) {
    case 'sarafan_accrue': {
      const amountText = prop(call, 'amount');
      const percentText = prop(call, 'percent');
      let amount: number | null;
      if (amountText !== '') {
        amount = robotAmount(amountText);
        if (amount === null) return refuse({ reason: 'invalid_property', property: 'amount' });
      } else if (percentText !== '') {
        const percent = robotPercent(percentText);
        if (percent === null) return refuse({ reason: 'invalid_property', property: 'percent' });
        if (!target.amount) return refuse({ reason: 'no_amount' });
        const base = await amountInProgramCurrency(deps, installation, target, target.amount);
        amount = percentOfDeal(base, percent);
        if (amount <= 0) return refuse({ reason: 'invalid_property', property: 'percent' });
      } else return refuse({ reason: 'missing_property', property: 'amount' });
      const comment = prop(call, 'comment') || `Automation robot on ${call.documentId}`;
      const answer = await adjustBalance(deps, installation, { person: target.client, amount, comment, userId, clientKey: key, causedBy: key });
      return {
        values: { accrued: robotMoney(amount), balance: answer.balance.toFixed(2), entry_id: String(answer.entry.id) },
        done: `+${robotMoney(amount)} → ${target.client.entity} ${target.client.id}`,
      };
    }
    case 'sarafan_redeem': {
      if (!target.deal) return refuse({ reason: 'deals_only' });
      const amountText = prop(call, 'amount');
      let amount: number | 'max' = 'max';
      if (amountText !== '') {
        const parsed = robotAmount(amountText);
        if (parsed === null) return refuse({ reason: 'invalid_property', property: 'amount' });
        amount = parsed;
      }
      const answer = await redeemBonus(deps, installation, { dealId: target.deal.id, amount, userId, clientKey: key });
      return {
        values: { redeemed: robotMoney(answer.facts.amount), balance: answer.client.balance.toFixed(2) },
        done: `−${robotMoney(answer.facts.amount)} on deal ${target.deal.id}`,
      };
    }
    case 'sarafan_status': {
      const m = await readMember(deps, installation, { entity: target.client.entity, id: target.client.id, limit: 1 });
      return {
        values: {
          code: m.code ?? '',
          link: m.link ?? '',
          balance: m.balance.toFixed(2),
          pending: m.pending.toFixed(2),
          tier: m.tier ?? '',
          referrals: String(m.referrals),
        },
        done: `${target.client.entity} ${target.client.id}: ${m.balance.toFixed(2)}${m.tier ? `, ${m.tier}` : ''}`,
      };
    }
    case 'sarafan_enroll': {
      await enrollMember(deps, installation, target.client);
      const m = await readMember(deps, installation, { entity: target.client.entity, id: target.client.id, limit: 1 });
      return { values: { code: m.code ?? '', link: m.link ?? '' }, done: `${target.client.entity} ${target.client.id}: ${m.code ?? ''}` };
    }
    case 'sarafan_promo': {
      const typed = prop(call, 'code');
      if (typed === '') return refuse({ reason: 'missing_property', property: 'code' });
      const answer = await activatePromoCode(deps, installation, target.client, typed, userId);
      return {
        values: { accrued: answer.entry.amount.toFixed(2), balance: answer.balance.toFixed(2) },
        done: `${answer.code}: +${answer.entry.amount.toFixed(2)} → ${target.client.entity} ${target.client.id}`,
      };
    }
  }
}

/** An AppError a use case refused with, as a robot failure (its reason when the robot knows it). */
function failureOf(e: AppError): RobotFailure {
  const known = ['insufficient_balance', 'over_deal_limit', 'deal_closed', 'currency_not_converted', 'unknown_code', 'already_used', 'campaign_over'] as const;
  const reason = known.find((r) => r === e.reason);
  if (reason) return { reason };
  if (e.code === 'not_found') return { reason: 'document_not_found' };
  return { reason: 'refused', message: e.message };
}

async function decide(deps: Deps, installation: Installation, call: RobotCall): Promise<RobotAnswer> {
  const lang = portalLang(installation.domain, installation.lang);
  let failure: RobotFailure;
  try {
    const target = await resolveTarget(deps, installation, call);
    const { values, done } = await act(deps, installation, call, target);
    return { values: { ...values, ok: 'Y', error: '' }, log: robotLog(call.code, true, done, lang) };
  } catch (e) {
    if (e instanceof RobotRefusal) failure = e.failure;
    // A portal that did not answer is worth a retry (the queue's backoff); a refusal is an answer.
    else if (e instanceof AppError && e.code !== 'portal_unavailable' && e.code !== 'internal') failure = failureOf(e);
    else throw e;
  }
  const error = robotError(failure, lang);
  return { values: { ...EMPTY[call.code], ok: 'N', error }, log: robotLog(call.code, false, error, lang) };
}

export interface RunRobotCallOptions {
  /**
   * The queue will not try this call again (its job's last attempt): a call that still cannot be
   * decided is answered ok = N ("could not process the call, try again") rather than left to go
   * dead unanswered — the automation would wait for an answer that never comes.
   */
  lastAttempt?: boolean;
}

export async function runRobotCall(deps: Deps, installation: Installation, tokenHash: string, opts: RunRobotCallOptions = {}): Promise<void> {
  const portalId = installation.id;
  const call = await deps.store.robotCalls.get(portalId, tokenHash);
  if (!call || call.answeredAt !== null) return;
  const answer = call.answer ?? (await deps.store.robotCalls.saveAnswer(portalId, tokenHash, await decideOrGiveUp(deps, installation, call, opts)));
  const [, sent] = await deps.crm.forInstallation(installation).answerRobot(call.eventToken, answer.values, answer.log);
  // ACCESS_DENIED: the token is expired or already answered (by an earlier run whose reply was lost): nothing more can be sent.
  if (sent && !sent.ok && !/^ACCESS_DENIED/.test(sent.error)) {
    throw new PortalCallError('bizproc.event.send', sent.error.split(':')[0] ?? 'ERROR', 0, sent.error);
  }
  await deps.store.robotCalls.markAnswered(portalId, tokenHash, deps.clock.now());
  deps.log.info({ portalId, code: call.code, ok: answer.values.ok, refused: sent ? !sent.ok : false }, 'robot.answered');
}

/** decide(), except that on the last attempt a failure becomes the "try again" answer (the answer is stored, so it is sent once). */
async function decideOrGiveUp(deps: Deps, installation: Installation, call: RobotCall, opts: RunRobotCallOptions): Promise<RobotAnswer> {
  try {
    return await decide(deps, installation, call);
  } catch (e) {
    if (!opts.lastAttempt) throw e;
    deps.log.error({ portalId: installation.id, code: call.code, error: e instanceof Error ? e.message : String(e) }, 'robot.gave_up');
    const lang = portalLang(installation.domain, installation.lang);
    const error = robotError({ reason: 'not_processed' }, lang);
    return { values: { ...EMPTY[call.code], ok: 'N', error }, log: robotLog(call.code, false, error, lang) };
  }
}
