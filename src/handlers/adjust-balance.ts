/**
 * POST /api/members/:entity/:id/adjust (SPEC 3, 7): an admin adds or takes bonus by hand, with a
 * mandatory comment. One ledger entry (reason `adjustment`, available at once) recording who
 * (`user:<id>`) and why (the comment), under the member's `client:<id>` advisory lock — the lock
 * redemptions and the referral loop take — so a negative adjustment is checked against the
 * committed balance and may not take the available balance below zero (src/rules/adjustment.ts
 * says why, whatever `overspend` says).
 *
 * The person is read through the CRM port when Sarafan has no member for it yet (404 when the
 * portal has no such person). With a client key (`Idempotency-Key`) a retried request answers the
 * first entry again instead of adjusting twice.
 */
import type { AdjustAnswer } from '../contract/api.js';
import { checkAdjustment } from '../rules/adjustment.js';
import { unwrittenExpiry } from '../rules/expiry.js';
import { fromMinor } from '../rules/money.js';
import { memberOfPerson, readCrmPerson } from './crm-person.js';
import { AppError } from './errors.js';
import { ledgerItems } from './ledger-view.js';
import { oweProjections, projectNow } from './project-after-commit.js';
import type { Deps, Installation, LedgerEntry, Member, PersonRef } from './ports.js';

export interface AdjustCommand {
  person: PersonRef;
  /** Signed, non-zero, minor units. */
  amount: number;
  comment: string;
  userId: number;
  clientKey?: string;
  /** Who caused it, when not the user (an automation robot: `robot:<token hash>`); default `user:<userId>`. */
  causedBy?: string;
}

export type { AdjustAnswer };

export async function adjustBalance(deps: Deps, installation: Installation, cmd: AdjustCommand): Promise<AdjustAnswer> {
  const { store } = deps;
  const portalId = installation.id;
  let member: Member | null = await store.members.findByEntity(portalId, cmd.person.entity, cmd.person.id);
  if (!member) member = await memberOfPerson(store, portalId, await readCrmPerson(deps, installation, cmd.person), deps.clock.now());
  const memberId = member.id;
  // A client key is scoped to the member: the same key sent for someone else is another request.
  const key = `adjust:${memberId}:${cmd.clientKey === undefined ? `r:${Buffer.from(deps.randomBytes(12)).toString('hex')}` : `key:${cmd.clientKey}`}`;

  const outcome = await store.transaction(async (tx) => {
    await tx.lock(portalId, `client:${memberId}`);
    const now = deps.clock.now();
    const previous = await tx.ledger.byKey(portalId, key);
    if (previous) return { entry: previous, fresh: false as const, now };
    const available = (await tx.ledger.balances(portalId, [memberId], now)).get(memberId)?.available ?? 0;
    // Bonus that lapsed before the hourly expiry run is not there to take (src/rules/expiry.ts).
    const lapsed = cmd.amount < 0 ? unwrittenExpiry(await tx.ledger.forMembers(portalId, [memberId]), now) : 0;
    const verdict = checkAdjustment({ amount: cmd.amount, available: available + lapsed });
    if (!verdict.ok) throw new AppError('conflict', 'The adjustment would take the available balance below zero', [], { reason: verdict.reason });
    const { inserted } = await tx.ledger.append([
      {
        portalId,
        memberId,
        amount: cmd.amount,
        reason: 'adjustment',
        kind: verdict.kind,
        dealId: null,
        level: 0,
        programVersion: null,
        idempotencyKey: key,
        availableAt: now,
        expiresAt: null,
        causedBy: cmd.causedBy ?? `user:${cmd.userId}`,
        comment: cmd.comment,
        createdAt: now,
      },
    ]);
    const jobKey = await oweProjections(deps, tx, portalId, { memberIds: [memberId], dealIds: [] }, now);
    return { entry: inserted[0]! as LedgerEntry, fresh: true as const, jobKey, now };
  });

  if (outcome.fresh) {
    deps.log.info({ portalId, memberId, amount: cmd.amount, userId: cmd.userId }, 'adjustment.recorded');
    await projectNow(deps, installation, { memberIds: [memberId], dealIds: [] }, outcome.jobKey);
  }
  const balance = (await store.ledger.balances(portalId, [memberId], outcome.now)).get(memberId) ?? { available: 0, pending: 0 };
  const [entry] = await ledgerItems(store, portalId, [outcome.entry], outcome.now, []);
  return { entity: cmd.person.entity, id: cmd.person.id, entry: entry!, balance: fromMinor(balance.available), pending: fromMinor(balance.pending) };
}
