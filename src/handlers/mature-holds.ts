/**
 * Hold maturation (SPEC 6; a `holds.mature` job per portal, at least hourly). A reward held by
 * the program's `referral.holdDays` is pending until its `available_at`; when that passes,
 * nothing in the CRM changes by itself, so the contact (else the lead) of every member whose
 * held entries became available since the last run is queued like a changed entity — the loop
 * then re-reads it and writes BALANCE and PENDING where they differ from the ledger.
 *
 * The jobs and the moved watermark are committed together: a crash queues them again next run,
 * never loses them.
 */
import { crmChangeJob } from './crm-change-job.js';
import type { Deps } from './ports.js';

export async function matureHolds(deps: Deps, portalId: number): Promise<number> {
  const installation = await deps.store.installations.get(portalId);
  if (!installation || installation.status !== 'active') return 0;
  const now = deps.clock.now();
  const since = (await deps.store.watermarks.get(portalId, ['holds.mature'])).get('holds.mature')?.mark ?? installation.createdAt;
  if (now <= since) return 0;
  const memberIds = await deps.store.ledger.maturing(portalId, since, now);
  const members = memberIds.length ? await deps.store.members.getMany(portalId, memberIds) : [];
  const queued = await deps.store.transaction(async (tx) => {
    let added = 0;
    for (const m of members) {
      const job = m.contactId ? crmChangeJob(portalId, 'contact', m.contactId) : m.leadId ? crmChangeJob(portalId, 'lead', m.leadId) : null;
      if (job && (await tx.jobs.enqueue(job, now))) added++;
    }
    await tx.watermarks.save(portalId, 'holds.mature', now, now);
    return added;
  });
  if (members.length) deps.log.info({ portalId, members: members.length, queued }, 'holds.matured');
  return members.length;
}
