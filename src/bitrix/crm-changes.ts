/**
 * What changed in a portal's CRM since a time (the CrmScanner port; reconciliation, SPEC 6), in
 * as few requests as the platform allows: `crm.<entity>.list` with `start=-1` (no COUNT),
 * `order ID ASC`, `>ID` paging and a `>=DATE_MODIFY` filter, selecting only ID and DATE_MODIFY
 * (reference §3.3) — 50 such pages chained in one `batch`, each page's `>ID` being the last row
 * of the one before, `$result[pN][49][ID]` (§3.4): 2 500 rows per request.
 *
 * A short page ends the chain. The commands after it reference a row that does not exist, which
 * the platform does not document (the sandbox leaves the reference text as it is, and the
 * filter then matches rows from the start again), so whatever they answer — rows or errors —
 * is ignored.
 *
 * DATE_MODIFY comes back as ISO-8601 in the portal's time zone (`2024-08-30T14:29:00+03:00`,
 * §3.1); the filter is sent as an ISO instant with an explicit offset, which the portal
 * converts. `listedAt` is the portal's own clock at the first command (`result_time`), so the
 * caller's watermark never depends on Sarafan's clock agreeing with the portal's.
 */
import qs from 'qs';
import { PortalCallError } from '../handlers/errors.js';
import type { ChangedEntity, CrmEntity, CrmScanner, PortalGateways } from '../handlers/ports.js';

/** Rows per list page (fixed by the platform) and commands per batch. */
const PAGE = 50;
const CHAIN = 50;

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `2026-03-01T12:00:00+00:00`: whole seconds (DATE_MODIFY has no more), rounded down so nothing is skipped. */
export function filterDateTime(at: Date): string {
  return `${new Date(Math.floor(at.getTime() / 1000) * 1000).toISOString().slice(0, 19)}+00:00`;
}

/** DATE_MODIFY as the portal writes it; null when it is not an ISO date-time with an offset. */
export function parseDateModify(value: unknown): Date | null {
  if (typeof value !== 'string') return null;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)$/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms);
}

/** The `batch` commands of one request: page n lists after the last row of page n-1. */
export function chainedListCommands(entity: CrmEntity, since: Date, afterId: number, length = CHAIN): Record<string, string> {
  const cmd: Record<string, string> = {};
  for (let i = 0; i < length; i++) {
    const params = {
      order: { ID: 'ASC' },
      filter: { '>=DATE_MODIFY': filterDateTime(since), '>ID': i === 0 ? afterId : `$result[p${i - 1}][${PAGE - 1}][ID]` },
      select: ['ID', 'DATE_MODIFY'],
      start: -1,
    };
    cmd[`p${i}`] = `crm.${entity}.list?${qs.stringify(params)}`;
  }
  return cmd;
}

export function createCrmScanner(gateways: PortalGateways): CrmScanner {
  return {
    async changedSince(installation, entity, since, afterId) {
      const method = `crm.${entity}.list`;
      const answer = await gateways.forInstallation(installation).call('batch', { halt: 0, cmd: chainedListCommands(entity, since, afterId) });
      // PHP serializes an empty map as [], which is "no entries" here.
      const results = isRecord(answer) && isRecord(answer.result) ? answer.result : {};
      const errors = isRecord(answer) && isRecord(answer.result_error) ? answer.result_error : {};
      const times = isRecord(answer) && isRecord(answer.result_time) ? answer.result_time : {};

      const entities: ChangedEntity[] = [];
      let last = afterId;
      for (let i = 0; i < CHAIN; i++) {
        const key = `p${i}`;
        const error = errors[key];
        if (error !== undefined && error !== null) {
          const e = isRecord(error) ? error : {};
          throw new PortalCallError(method, String(e.error ?? ''), 400, String(e.error_description ?? (typeof error === 'string' ? error : 'The list failed')));
        }
        const page = results[key];
        if (!Array.isArray(page)) throw new PortalCallError(method, 'UNEXPECTED_ANSWER', 200, `The batch answer has no rows for ${key}`);
        for (const row of page) {
          const id = Number.parseInt(String(isRecord(row) ? row.ID : ''), 10);
          // A reference the portal resolved wrongly would list from the start again.
          if (!Number.isSafeInteger(id) || id <= last) throw new PortalCallError(method, 'UNEXPECTED_ANSWER', 200, 'List rows carry no increasing numeric ID');
          last = id;
          entities.push({ id, modifiedAt: parseDateModify(isRecord(row) ? row.DATE_MODIFY : undefined) });
        }
        if (page.length < PAGE) return { entities, more: false, listedAt: listedAt(times.p0) };
      }
      return { entities, more: true, listedAt: listedAt(times.p0) };
    },
  };
}

function listedAt(time: unknown): Date | null {
  if (!isRecord(time)) return null;
  const start = Number(time.start);
  if (Number.isFinite(start) && start > 0) return new Date(Math.round(start * 1000));
  return parseDateModify(time.date_start);
}
