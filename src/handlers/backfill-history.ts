/**
 * Backfill on install (SPEC 6): the history Sarafan needs from before it was installed. Won
 * deals are recorded (history_deals), so "already a customer" and the analytics see the time
 * before the install; every contact and lead that already carries a Sarafan field (a code, or a
 * referrer's code typed before the install) is queued as a CRM change, so the referral loop
 * picks it up like an event.
 *
 * Runs as the `backfill.crm` job, queued when an installation becomes active. Re-running it is
 * harmless: wins are upserted by deal, and a person's change coalesces with one still queued.
 * Limits: a failed read fails the job (the queue retries it from the start); the history is a
 * snapshot — a deal lost after the backfill stays in it (the deals table follows it from then on).
 */
import { crmChangeJob } from './crm-change-job.js';
import { personKey, type Deps } from './ports.js';

export interface BackfillReport {
  wins: number;
  people: number;
}

/** Enqueues in flight at once: enough for the queue's group commit to gather them. */
const ENQUEUE_WAVE = 200;

export async function backfillHistory(deps: Deps, portalId: number): Promise<BackfillReport | null> {
  const installation = await deps.store.installations.get(portalId);
  if (!installation || installation.status === 'uninstalled' || !installation.tokens) {
    deps.log.info({ portalId }, 'backfill.skipped');
    return null;
  }
  const seen = new Set<string>();
  const report: BackfillReport = { wins: 0, people: 0 };
  await deps.crmHistory.read(installation, async (page) => {
    if (page.wins.length) await deps.store.history.saveWins(portalId, page.wins);
    report.wins += page.wins.length;
    const fresh = page.people.filter((p) => !seen.has(personKey(p)));
    for (const p of fresh) seen.add(personKey(p));
    for (let from = 0; from < fresh.length; from += ENQUEUE_WAVE) {
      const now = deps.clock.now();
      await Promise.all(
        fresh.slice(from, from + ENQUEUE_WAVE).map((p) =>
          deps.store.jobs.enqueue(crmChangeJob(portalId, p.entity, p.id), now),
        ),
      );
    }
    report.people += fresh.length;
  });
  deps.log.info({ memberId: installation.memberId, portalId, ...report }, 'backfill.finished');
  return report;
}
