/**
 * The periodic reconciliation (SPEC 6; a `reconcile.crm` job per portal and tick). Bitrix24
 * never retries an event (reference §4.4), so the contacts, leads and deals changed since the
 * portal's watermark are listed and queued exactly as their events would have been; the loop
 * then re-reads them and writes only what differs — a deal whose event was lost is credited
 * once, and an entity already processed costs a read and nothing more.
 *
 * Each entity's watermark moves only once its jobs are durably queued: to the portal's own
 * clock when the listing began, minus an overlap (a change committed while the listing ran;
 * DATE_MODIFY's whole seconds) — or, when the portal did not say its time, to the newest
 * DATE_MODIFY seen minus the overlap. Starting from the listing's start rather than from the
 * newest row means a long listing cannot pass over an entity changed behind its cursor, and a
 * quiet portal stops re-listing its last change. A portal's first reconciliation starts at its
 * install (the backfill covers the time before).
 *
 * Messages still owed to the CRM timeline (their send job given up after its retries) are queued
 * for sending again by the same tick, so a portal outage never leaves feedback unsent for good.
 *
 * Known limit: a deletion whose event was lost is not seen (deleted entities are not listed).
 */
import { crmChangeJob } from './crm-change-job.js';
import { feedbackSendJob } from './enqueue-feedback.js';
import type { CrmEntity, Deps, WatermarkName } from './ports.js';

export const RECONCILE_OVERLAP_MS = 60_000;

/** People first: a referral code on a contact is recorded before its deal's win is priced. */
const ENTITIES: CrmEntity[] = ['contact', 'lead', 'deal'];

export interface ReconcileOutcome {
  entity: CrmEntity;
  /** Entities the portal listed as changed. */
  listed: number;
  /** Jobs added (the rest coalesced into jobs already queued). */
  queued: number;
  /** List requests made. */
  requests: number;
  since: Date;
  mark: Date;
}

const markName = (entity: CrmEntity): WatermarkName => `reconcile.${entity}`;

export async function reconcileCrm(deps: Deps, portalId: number): Promise<ReconcileOutcome[]> {
  const installation = await deps.store.installations.get(portalId);
  if (!installation || installation.status !== 'active' || !installation.tokens) return [];
  const marks = await deps.store.watermarks.get(portalId, ENTITIES.map(markName));
  const installedAt = installation.installedAt ?? installation.createdAt;
  const outcomes: ReconcileOutcome[] = [];

  for (const entity of ENTITIES) {
    const since = marks.get(markName(entity))?.mark ?? new Date(installedAt.getTime() - RECONCILE_OVERLAP_MS);
    let afterId = 0;
    let listedAt: Date | null = null;
    let newest: Date | null = null;
    const outcome = { entity, listed: 0, queued: 0, requests: 0, since, mark: since };
    for (;;) {
      const page = await deps.crmScanner.changedSince(installation, entity, since, afterId);
      if (outcome.requests++ === 0) listedAt = page.listedAt;
      const now = deps.clock.now();
      const added = await Promise.all(page.entities.map((e) => deps.store.jobs.enqueue(crmChangeJob(portalId, entity, e.id), now)));
      outcome.listed += page.entities.length;
      outcome.queued += added.filter(Boolean).length;
      for (const e of page.entities) if (e.modifiedAt && (!newest || e.modifiedAt > newest)) newest = e.modifiedAt;
      const last = page.entities.at(-1);
      if (!page.more || !last) break;
      afterId = last.id;
    }
    const reference = listedAt ?? newest;
    if (reference) outcome.mark = new Date(Math.max(since.getTime(), reference.getTime() - RECONCILE_OVERLAP_MS));
    await deps.store.watermarks.save(portalId, markName(entity), outcome.mark, deps.clock.now());
    outcomes.push(outcome);
  }
  if ((await deps.store.feedback.queued(portalId, 1)).length) await deps.store.jobs.enqueue(feedbackSendJob(portalId), deps.clock.now());
  deps.log.info(
    { portalId, listed: Object.fromEntries(outcomes.map((o) => [o.entity, o.listed])), queued: outcomes.reduce((n, o) => n + o.queued, 0), requests: outcomes.reduce((n, o) => n + o.requests, 0) },
    'reconcile.done',
  );
  return outcomes;
}
