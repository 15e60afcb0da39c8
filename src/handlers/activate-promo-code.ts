/**
 * POST /api/members/:entity/:id/promo (SPEC 3, 5 promo-code campaigns): a manager types the code
 * a client brought (printed on a product) and the client's card is credited the campaign's value —
 * one ledger entry, reason `promo`, keyed by the code. The person becomes a member (and is
 * enrolled, given a referral code) if they were not one.
 *
 * A code works once, ever: the claim is a conditional update that one caller wins however many
 * race (and the entry's idempotency key is the code, a second guard). Refusals are 409 with a
 * reason: `unknown_code` (not this portal's, or not a code at all), `already_used`,
 * `campaign_over` (the campaign's expiresAt passed). The CRM fields follow through a `crm.project`
 * job committed with the entry.
 */
import type { PromoAnswer } from '../contract/api.js';
import { generateCode, normalizeCode } from '../rules/codes.js';
import { expiresAtFor } from '../rules/expiry.js';
import { fromMinor } from '../rules/money.js';
import { AppError } from './errors.js';
import { ledgerItems } from './ledger-view.js';
import { currentProgram } from './program-versions.js';
import type { Deps, Installation, Member, PersonEntity, TxRepos } from './ports.js';

export type PromoRefusal = 'unknown_code' | 'already_used' | 'campaign_over';

/** The answer: the contract's PromoAnswer. */
export type PromoActivation = PromoAnswer;

const CODE_ATTEMPTS = 8;

const refuse = (reason: PromoRefusal, message: string): AppError => new AppError('conflict', message, [{ path: 'code', message: reason }], { reason });

async function ensureEnrolled(deps: Deps, tx: TxRepos, portalId: number, entity: PersonEntity, id: number, prefix: string, now: Date): Promise<Member> {
  const member = await tx.members.ensure(portalId, entity, id, now);
  if (member.code !== null) return member;
  for (let attempt = 0; attempt < CODE_ATTEMPTS; attempt++) {
    const enrolled = await tx.members.enroll(portalId, member.id, generateCode(deps.randomBytes, { prefix }), now);
    if (enrolled !== 'code_taken') {
      deps.log.info({ portalId, memberId: enrolled.id }, 'member.enrolled');
      return enrolled;
    }
  }
  throw new Error(`Could not find a free referral code after ${CODE_ATTEMPTS} attempts`);
}

export async function activatePromoCode(deps: Deps, installation: Installation, person: { entity: PersonEntity; id: number }, typed: string, userId: number): Promise<PromoActivation> {
  const portalId = installation.id;
  const code = normalizeCode(typed);
  if (code === null) throw refuse('unknown_code', 'This is not a promo code of this portal');
  const now = deps.clock.now();
  const { version, program } = await currentProgram(deps.store.programs, portalId, now);

  const { entry, member, campaign } = await deps.store.transaction(async (tx) => {
    const found = await tx.promo.findCode(portalId, code);
    if (!found) throw refuse('unknown_code', 'This is not a promo code of this portal');
    if (found.usedAt !== null) throw refuse('already_used', 'This promo code was already used');
    if (found.campaign.expiresAt !== null && found.campaign.expiresAt.getTime() <= now.getTime()) throw refuse('campaign_over', 'The promo campaign of this code is over');

    const member = await ensureEnrolled(deps, tx, portalId, person.entity, person.id, program.enrol.codePrefix, now);
    // The row lock makes a concurrent claimer wait for us and then find the code used.
    if (!(await tx.promo.claim(portalId, code, member.id, now))) throw refuse('already_used', 'This promo code was already used');
    const { inserted } = await tx.ledger.append([
      {
        portalId,
        memberId: member.id,
        amount: found.campaign.value,
        reason: 'promo',
        kind: 'credit',
        dealId: null,
        level: 0,
        programVersion: version,
        idempotencyKey: `promo:${code}`,
        availableAt: now,
        expiresAt: expiresAtFor(now, program.expiry.days),
        causedBy: `user:${userId}`,
        comment: `promo code ${code} (${found.campaign.name})`,
        createdAt: now,
      },
    ]);
    // Unreachable while the claim holds; kept as the ledger's own guard rather than a silent no-op.
    if (inserted.length !== 1) throw refuse('already_used', 'This promo code was already used');
    await tx.jobs.enqueue({ portalId, kind: 'crm.project', key: `promo:${code}`, payload: { members: [member.id], deals: [] } }, now);
    return { entry: inserted[0]!, member, campaign: found.campaign };
  });

  deps.log.info({ portalId, memberId: member.id, campaignId: campaign.id, amount: entry.amount, userId }, 'promo.activated');
  const balance = (await deps.store.ledger.balances(portalId, [member.id], now)).get(member.id)!;
  const [item] = await ledgerItems(deps.store, portalId, [entry], now, []);
  return {
    code,
    campaign: { id: campaign.id, name: campaign.name },
    entry: item!,
    balance: fromMinor(balance.available),
    pending: fromMinor(balance.pending),
  };
}
