/**
 * The job that makes the loop re-read one CRM entity, keyed per entity so that it coalesces
 * with every other reason to read it while queued: what an ONCRM* event queues, and what the
 * reconciliation and hold maturation queue for entities no event announced (SPEC 6).
 */
import type { CrmEntity, NewJob } from './ports.js';

export function crmChangeJob(portalId: number, entity: CrmEntity, id: number, deleted = false, extra: Record<string, unknown> = {}): NewJob {
  return { portalId, kind: 'crm.change', key: `${entity}:${id}`, payload: { entity, id, deleted, ...extra } };
}
