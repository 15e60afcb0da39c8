/**
 * GET /api/ledger (issue 12, SPEC 7 main page; admins): the portal's ledger searched by person,
 * deal, reason, kind and period, newest first — by the time written, then the entry id — paged
 * with the last entry's id as the cursor (`before`). The filters combine with AND; a person who is
 * not in the program is an empty page, not an error. Migration 0013 indexes (created_at, id) per
 * portal, per reason and per kind, so each filter reads its page from an index however old the
 * period (measured on PostgreSQL with 1 000 000 entries: see the migration).
 *
 * Reads: one query for the page (the person is resolved inside it), one for the page's members,
 * and the deal slots of the page's entries for their status (src/handlers/ledger-view.ts) — a
 * fixed number of set-based queries whatever the page size. Entries are shown as the member API
 * shows them, plus whose bonus they change and what caused them.
 */
import type { LedgerSearchAnswer } from '../contract/admin.js';
import { ledgerItems, personOf } from './ledger-view.js';
import { currentProgram } from './program-versions.js';
import type { Deps, LedgerSearch } from './ports.js';

export const DEFAULT_SEARCH_PAGE = 50;
export const MAX_SEARCH_PAGE = 100;

export async function searchLedger(deps: Deps, portalId: number, q: LedgerSearch): Promise<LedgerSearchAnswer> {
  const now = deps.clock.now();
  const { program } = await currentProgram(deps.store.programs, portalId, now);
  // One entry more than the page tells whether an older page exists without a COUNT.
  const found = await deps.store.ledger.search(portalId, { ...q, limit: q.limit + 1 });
  const entries = found.slice(0, q.limit);
  const [members, items] = await Promise.all([
    deps.store.members.getMany(portalId, [...new Set(entries.map((e) => e.memberId))]),
    ledgerItems(deps.store, portalId, entries, now),
  ]);
  const byId = new Map(members.map((m) => [m.id, m]));
  return {
    currency: program.currency,
    items: items.map((item, i) => ({ ...item, member: personOf(byId.get(entries[i]!.memberId)), causedBy: entries[i]!.causedBy })),
    nextBefore: found.length > q.limit ? entries.at(-1)!.id : null,
  };
}
