/**
 * The portal's history Sarafan needs (SPEC 6 backfill), read within SPEC 11's budget (≤ 50
 * requests for 100 000 deals):
 * - won deals (`STAGE_SEMANTIC_ID = S`, every pipeline) with client, amount, currency,
 *   pipeline and dates; contacts and leads whose Sarafan code or referrer's code is not empty;
 * - each list walks by id: `start=-1` (no COUNT), ORDER ID ASC, `>ID` = the last id seen, only
 *   the fields needed (reference §3.3);
 * - 50 list commands go in one `batch`, chained: command n's `>ID` is
 *   `$result[<command n-1>][49][ID]`, the last id of the page before (§3.4), so one request
 *   reads up to 2 500 rows. Several lists share a request while more than one is unfinished.
 *
 * A list ends at its first short page. The commands chained after it refer to a row that does
 * not exist; the portal leaves such a reference unresolved (the sandbox passes the text on as
 * the filter value, which matches from the first row again), so their answers — rows or errors —
 * are never read. Every page read is checked to continue the one before (ids ascending, above
 * the cursor): anything else is an unexpected answer, never silently skipped history.
 */
import qs from 'qs';
import { PortalCallError } from '../handlers/errors.js';
import type { Clock, CrmHistory, HistoricalWin, HistoryPage, PersonEntity, PersonRef } from '../handlers/ports.js';
import type { PortalGatewayFactory } from './portal-gateway.js';
import { toMinor } from '../rules/money.js';
import { F } from './crm-fields.js';

/** Fixed page size of list methods (§3.3) and the batch limit (§3.4). */
export const PAGE = 50;
export const BATCH_MAX = 50;

const DEAL_SELECT = ['ID', 'CONTACT_ID', 'LEAD_ID', 'CATEGORY_ID', 'OPPORTUNITY', 'CURRENCY_ID', 'MOVED_TIME', 'CLOSEDATE', 'DATE_MODIFY', 'DATE_CREATE'];

type Row = Record<string, unknown>;

interface ListSpec {
  /** Prefix of this list's command keys in a batch. */
  key: string;
  method: string;
  filter: Row;
  select: string[];
  take(rows: Row[], page: HistoryPage, now: Date): void;
}

interface Walk {
  spec: ListSpec;
  cursor: number;
  done: boolean;
}

function isRecord(v: unknown): v is Row {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Legacy lists answer ids as strings ("410"); 0, '' and null are "none". */
function idOf(v: unknown): number | null {
  const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  if (!/^\d+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** Legacy dates: `2024-08-30T14:29:00+03:00` (dates carry a midnight time); '' or null when unset. */
function dateOf(v: unknown): Date | null {
  if (typeof v !== 'string' || !v.trim()) return null;
  const ms = Date.parse(v.trim());
  return Number.isNaN(ms) ? null : new Date(ms);
}

function wonDeal(row: Row, now: Date): HistoricalWin {
  const dealId = idOf(row.ID)!;
  const amount = toMinor(typeof row.OPPORTUNITY === 'number' || typeof row.OPPORTUNITY === 'string' ? row.OPPORTUNITY : '0');
  return {
    dealId,
    contactId: idOf(row.CONTACT_ID),
    leadId: idOf(row.LEAD_ID),
    categoryId: idOf(row.CATEGORY_ID) ?? 0,
    amount: amount ?? 0,
    currency: typeof row.CURRENCY_ID === 'string' ? row.CURRENCY_ID : '',
    // The last stage change of a won deal is its win; older portals may only have the close date.
    wonAt: dateOf(row.MOVED_TIME) ?? dateOf(row.CLOSEDATE) ?? dateOf(row.DATE_MODIFY) ?? dateOf(row.DATE_CREATE) ?? now,
    createdAt: dateOf(row.DATE_CREATE),
  };
}

function peopleList(key: string, entity: PersonEntity, field: string): ListSpec {
  return {
    key,
    method: `crm.${entity}.list`,
    // `!FIELD: ''` is "not empty" in legacy filters.
    filter: { [`!${field}`]: '' },
    select: ['ID'],
    take(rows, page) {
      for (const row of rows) page.people.push({ entity, id: idOf(row.ID)! } satisfies PersonRef);
    },
  };
}

export const HISTORY_LISTS: readonly ListSpec[] = [
  {
    key: 'd',
    method: 'crm.deal.list',
    filter: { STAGE_SEMANTIC_ID: 'S' },
    select: DEAL_SELECT,
    take(rows, page, now) {
      for (const row of rows) page.wins.push(wonDeal(row, now));
    },
  },
  peopleList('cc', 'contact', F.CODE),
  peopleList('cr', 'contact', F.REF_CODE),
  peopleList('lc', 'lead', F.CODE),
  peopleList('lr', 'lead', F.REF_CODE),
];

/** Commands of one request, shared evenly by the unfinished lists (the first ones get the rest). */
export function shareSlots(walks: number, slots = BATCH_MAX): number[] {
  const base = Math.floor(slots / walks);
  return Array.from({ length: walks }, (_v, i) => base + (i < slots % walks ? 1 : 0));
}

function command(spec: ListSpec, after: number | string): string {
  const params = { order: { ID: 'ASC' }, filter: { ...spec.filter, '>ID': after }, select: spec.select, start: -1 };
  return `${spec.method}?${qs.stringify(params)}`;
}

function unexpected(method: string, message: string): PortalCallError {
  return new PortalCallError(method, 'UNEXPECTED_ANSWER', 200, message);
}

export function createCrmHistory(gateways: Pick<PortalGatewayFactory, 'forInstallation'>, clock: Clock): CrmHistory {
  return {
    async read(installation, onPage) {
      const gateway = gateways.forInstallation(installation);
      const walks: Walk[] = HISTORY_LISTS.map((spec) => ({ spec, cursor: 0, done: false }));
      for (;;) {
        const open = walks.filter((w) => !w.done);
        if (!open.length) return;
        const shares = shareSlots(open.length);
        const cmd: Record<string, string> = {};
        open.forEach((w, i) => {
          for (let n = 0; n < shares[i]!; n++) {
            cmd[`${w.spec.key}${n}`] = command(w.spec, n === 0 ? w.cursor : `$result[${w.spec.key}${n - 1}][${PAGE - 1}][ID]`);
          }
        });
        const answer = await gateway.call('batch', { halt: 0, cmd });
        // PHP serializes an empty map as [], which isRecord treats as "no entries".
        const results = isRecord(answer) && isRecord(answer.result) ? answer.result : {};
        const errors = isRecord(answer) && isRecord(answer.result_error) ? answer.result_error : {};
        const now = clock.now();
        const page: HistoryPage = { wins: [], people: [] };
        open.forEach((w, i) => {
          for (let n = 0; n < shares[i]! && !w.done; n++) {
            const key = `${w.spec.key}${n}`;
            const error = errors[key];
            if (error !== undefined && error !== null) {
              const e = isRecord(error) ? error : { error: String(error) };
              throw new PortalCallError(w.spec.method, String(e.error ?? ''), 200, String(e.error_description ?? ''));
            }
            const rows = results[key];
            if (!Array.isArray(rows)) throw unexpected(w.spec.method, `The batch answer has no rows for ${key}`);
            let last = w.cursor;
            for (const row of rows) {
              const id = isRecord(row) ? idOf(row.ID) : null;
              if (id === null || id <= last) throw unexpected(w.spec.method, `List rows of ${key} do not continue after ID ${last}`);
              last = id;
            }
            w.spec.take(rows as Row[], page, now);
            w.cursor = last;
            if (rows.length < PAGE) w.done = true;
          }
        });
        await onPage(page);
      }
    },
  };
}
