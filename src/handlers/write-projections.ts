/**
 * Sarafan's computed CRM fields (SPEC 4.1) brought in line with the ledger: for the given members
 * (their contact, else their lead) and deals, the desired values are computed from the member
 * read model and the deals' entries, compared with what the entity shows (when the caller just
 * read it) or with what Sarafan last wrote, and only the differences are written, in batches.
 *
 * This is the `crm.project` job's work: a change run enqueues it in the same transaction as its
 * ledger entries, so a crash between the commit and the write, or a failed write, never leaves a
 * field wrong — the job runs (again) until every write succeeded.
 */
import { dealProjection, isEmptyProjection, personProjection, projectionChanges, type Projection } from '../rules/project-to-crm.js';
import { referralLink } from '../rules/referral-link.js';
import { personOf } from './ledger-view.js';
import { loadMemberSummaries } from './member-summaries.js';
import { currentProgram } from './program-versions.js';
import { projectionKey, type CrmEntity, type CrmWrite, type DealState, type Deps, type Installation, type LedgerEntry, type PersonRef, type Referral } from './ports.js';

export interface ProjectionTargets {
  memberIds: number[];
  dealIds: number[];
}

export interface ProjectionHints {
  /** What entities read in this run show now, keyed by projectionKey. */
  shown?: Map<string, Projection>;
  /** Referrers of deals without a client, resolved from the deal's own code in this run. */
  dealReferrers?: Map<number, PersonRef | null>;
  /** Each deal's entries as just settled (saves reading them again). */
  dealEntries?: Map<number, LedgerEntry[]>;
  /** Deal states the caller just loaded or settled (saves reading them again). */
  deals?: Map<number, DealState>;
  /** Active referrals of clients the caller just loaded; null = the client has none. */
  clientReferrals?: Map<number, Referral | null>;
  /** What Sarafan last wrote to these keys (projectionKey), as the caller just read it; absent = nothing. */
  projections?: { keys: Set<string>; values: Map<string, Projection> };
}

export interface ProjectionResult {
  written: number;
  /** Targets whose write failed: the caller retries them. */
  failed: ProjectionTargets;
}

function rewardOf(entries: LedgerEntry[]): number {
  return entries.filter((e) => e.reason === 'referral').reduce((sum, e) => sum + e.amount, 0);
}

/** Redeemed on the deal (SPEC 4.1 REDEEMED), once the deal has ever had a redemption. */
function redeemedOf(entries: LedgerEntry[], written: Projection | undefined): number | undefined {
  const redemptions = entries.filter((e) => e.reason === 'redemption');
  if (!redemptions.length && (written?.redeemed === undefined || written.redeemed === null)) return undefined;
  return 0 - redemptions.reduce((sum, e) => sum + e.amount, 0);
}

export async function writeProjections(deps: Deps, installation: Installation, targets: ProjectionTargets, hints: ProjectionHints = {}): Promise<ProjectionResult> {
  const { store } = deps;
  const portalId = installation.id;
  const now = deps.clock.now();
  const { program } = await currentProgram(store.programs, portalId, now);
  const memberIds = [...new Set(targets.memberIds)];
  const dealIds = [...new Set(targets.dealIds)];

  const unknownDeals = dealIds.filter((id) => !hints.deals?.has(id));
  const [summaries, loadedDeals] = await Promise.all([
    loadMemberSummaries(store, portalId, memberIds, program, now),
    store.deals.getMany(portalId, unknownDeals),
  ]);
  const deals = [...dealIds.flatMap((id) => hints.deals?.get(id) ?? []), ...loadedDeals];
  const liveDeals = deals.filter((d) => !d.deleted);
  // A deal's referrer is its client's active referrer.
  const clientIds = [...new Set(liveDeals.map((d) => d.clientMemberId).filter((id): id is number => id !== null))];
  const clientReferrals = new Map<number, Referral>();
  for (const id of clientIds) {
    const known = hints.clientReferrals?.get(id);
    if (known) clientReferrals.set(id, known);
  }
  const unknownClients = clientIds.filter((id) => !hints.clientReferrals?.has(id));
  for (const [id, referral] of await store.referrals.activeForMany(portalId, unknownClients)) clientReferrals.set(id, referral);
  const referrerIds = [...new Set([...clientReferrals.values()].map((r) => r.referrerMemberId).filter((id): id is number => id !== null))];
  const [referrers, entries] = await Promise.all([
    store.members.getMany(portalId, referrerIds),
    hints.dealEntries && liveDeals.every((d) => hints.dealEntries!.has(d.dealId))
      ? Promise.resolve(liveDeals.flatMap((d) => hints.dealEntries!.get(d.dealId)!))
      : store.ledger.forDeals(portalId, liveDeals.map((d) => d.dealId)),
  ]);
  const referrerById = new Map(referrers.map((m) => [m.id, m]));
  const entriesOf = new Map<number, LedgerEntry[]>();
  for (const e of entries) {
    if (e.dealId === null) continue;
    const list = entriesOf.get(e.dealId);
    if (list) list.push(e);
    else entriesOf.set(e.dealId, [e]);
  }

  const people = [...summaries.values()].map((s) => ({ summary: s, target: personOf(s.member) })).filter((p) => p.target !== null);
  const keys = [
    ...people.map((p) => ({ entity: p.target!.entity as CrmEntity, entityId: p.target!.id })),
    ...liveDeals.map((d) => ({ entity: 'deal' as CrmEntity, entityId: d.dealId })),
  ];
  const known = hints.projections;
  const lastWritten = await store.projections.getMany(portalId, known ? keys.filter((k) => !known.keys.has(projectionKey(k.entity, k.entityId))) : keys);
  if (known) for (const k of keys) {
    const key = projectionKey(k.entity, k.entityId);
    const value = known.keys.has(key) ? known.values.get(key) : undefined;
    if (value) lastWritten.set(key, value);
  }

  const writes: (CrmWrite & { memberId?: number; dealId?: number })[] = [];
  for (const { summary, target } of people) {
    const key = projectionKey(target!.entity, target!.id);
    const { member, balance, referrals } = summary;
    const referrerTarget = personOf(summary.referrer);
    const inProgram = member.code || balance.available || balance.pending || referrals || lastWritten.has(key);
    if (!inProgram && !referrerTarget) continue; // a plain client: nothing of ours to show
    const desired: Projection = {};
    if (inProgram) {
      Object.assign(
        desired,
        personProjection({
          code: member.code,
          link: member.code ? referralLink(deps.appBaseUrl, installation, member.code) : null,
          balance: balance.available,
          pending: balance.pending,
          referrals,
          tier: summary.tier?.name ?? null,
          joinedAt: member.joinedAt,
        }),
      );
    }
    if (referrerTarget) desired.referrer = referrerTarget;
    const values = projectionChanges(desired, hints.shown?.get(key) ?? lastWritten.get(key));
    if (!isEmptyProjection(values)) writes.push({ entity: target!.entity, id: target!.id, values, memberId: member.id });
  }

  for (const deal of liveDeals) {
    const key = projectionKey('deal', deal.dealId);
    const referral = deal.clientMemberId === null ? null : (clientReferrals.get(deal.clientMemberId) ?? null);
    const referrer =
      deal.clientMemberId === null
        ? (hints.dealReferrers?.get(deal.dealId) ?? null)
        : personOf(referral?.referrerMemberId ? referrerById.get(referral.referrerMemberId) : null);
    const dealEntries = entriesOf.get(deal.dealId) ?? [];
    if (!referrer && !dealEntries.length && !lastWritten.has(key)) continue; // not ours to touch
    const redeemed = redeemedOf(dealEntries, lastWritten.get(key));
    const desired = dealProjection({ referrer, reward: rewardOf(dealEntries), ...(redeemed === undefined ? {} : { redeemed }) });
    if (!referrer) delete desired.referrer; // never erase a referrer a manager picked
    const values = projectionChanges(desired, hints.shown?.get(key) ?? lastWritten.get(key));
    if (!isEmptyProjection(values)) writes.push({ entity: 'deal', id: deal.dealId, values, dealId: deal.dealId });
  }

  const failed: ProjectionTargets = { memberIds: [], dealIds: [] };
  if (!writes.length) return { written: 0, failed };
  const outcomes = await deps.crm.forInstallation(installation).writeProjections(writes.map(({ entity, id, values }) => ({ entity, id, values })));
  const saved: { entity: CrmEntity; entityId: number; values: Projection }[] = [];
  writes.forEach((w, i) => {
    const outcome = outcomes[i]!;
    if (outcome.ok) {
      saved.push({ entity: w.entity, entityId: w.id, values: w.values });
      return;
    }
    deps.log.warn({ portalId, entity: w.entity, id: w.id, error: outcome.error }, 'crm.projection_failed');
    if (outcome.notFound) return; // deleted meanwhile: nothing left to write to
    if (w.memberId !== undefined) failed.memberIds.push(w.memberId);
    if (w.dealId !== undefined) failed.dealIds.push(w.dealId);
  });
  await store.projections.saveMany(portalId, saved, now);
  deps.log.info({ portalId, writes: saved.length, failed: writes.length - saved.length }, 'crm.projections_written');
  return { written: saved.length, failed };
}
