/**
 * GET /api/ledger.csv (SPEC 3; admins): the portal's ledger for a period as CSV, oldest entry
 * first, produced page by page (keyset on the entry id) so a million entries stream in constant
 * memory. UTF-8 with a BOM, `,` or `;` between fields (src/rules/csv.ts). Amounts are decimals in
 * the program currency; people are their CRM entity and id (names stay in the portal: reading
 * them would cost REST requests per page).
 */
import { CSV_BOM, csvLine, type CsvDelimiter } from '../rules/csv.js';
import { fromMinor } from '../rules/money.js';
import { personOf } from './ledger-view.js';
import { currentProgram } from './program-versions.js';
import type { Deps } from './ports.js';

const PAGE = 5_000;
const HEADER = ['entry_id', 'created_at', 'entity', 'crm_id', 'reason', 'kind', 'amount', 'currency', 'deal_id', 'level', 'available_at', 'expires_at', 'caused_by', 'comment'];

export interface LedgerExportQuery {
  /** Entries written at or after this time. */
  from?: Date;
  /** Entries written before this time. */
  to?: Date;
  delimiter: CsvDelimiter;
}

/** The CSV text in chunks (BOM and header first); the store is read lazily, a page at a time. */
export async function exportLedger(deps: Deps, portalId: number, q: LedgerExportQuery): Promise<AsyncIterable<string>> {
  const { program } = await currentProgram(deps.store.programs, portalId, deps.clock.now());
  const line = (fields: string[]): string => csvLine(fields, q.delimiter);
  async function* chunks(): AsyncGenerator<string> {
    yield CSV_BOM + line(HEADER);
    let afterId: number | undefined;
    for (;;) {
      const page = await deps.store.ledger.page(portalId, {
        limit: PAGE,
        ...(afterId === undefined ? {} : { afterId }),
        ...(q.from ? { from: q.from } : {}),
        ...(q.to ? { to: q.to } : {}),
      });
      if (!page.length) return;
      const members = new Map((await deps.store.members.getMany(portalId, [...new Set(page.map((e) => e.memberId))])).map((m) => [m.id, m]));
      let text = '';
      for (const e of page) {
        const who = personOf(members.get(e.memberId));
        text += line([
          String(e.id),
          e.createdAt.toISOString(),
          who?.entity ?? '',
          who ? String(who.id) : '',
          e.reason,
          e.kind,
          fromMinor(e.amount).toFixed(2),
          program.currency,
          e.dealId === null ? '' : String(e.dealId),
          String(e.level),
          e.availableAt.toISOString(),
          e.expiresAt?.toISOString() ?? '',
          e.causedBy,
          e.comment ?? '',
        ]);
      }
      yield text;
      if (page.length < PAGE) return;
      afterId = page.at(-1)!.id;
    }
  }
  return chunks();
}
