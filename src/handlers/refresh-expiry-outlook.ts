/**
 * The stored expiry outlook (migration 0014; runs in the hourly `bonus.expire` job, after the
 * expiry itself): for each member holding a lot that expires later and whose ledger changed since
 * the outlook was computed, replays the member's whole ledger through the FIFO rule
 * (src/rules/expiry.ts) and stores what each lot will still hold when it expires. That remainder
 * depends on the entries only, never on when it is asked, so GET /api/analytics sums the stored
 * amounts of any 30-day window and replays at read time only the members written since — instead
 * of replaying a third of the ledger on every view (SPEC 11).
 *
 * Per chunk, in one transaction: the members' outlook rows are locked before their entries are
 * read, and every ledger write bumps the member's version under that same row lock, so an append
 * racing the refresh either is read by it or leaves the member stale (replayed at read time).
 */
import { decideExpiry } from '../rules/expiry.js';
import type { Deps, LedgerEntry } from './ports.js';

const CHUNK = 500;
/** Stale members listed per query: the listing scans every unexpired credit, so it runs rarely. */
const PAGE = 50_000;

export async function refreshExpiryOutlook(deps: Pick<Deps, 'store' | 'clock'>, portalId: number): Promise<number> {
  const now = deps.clock.now();
  let after = 0;
  let refreshed = 0;
  for (;;) {
    const page = await deps.store.analytics.staleExpiryOutlooks(portalId, now, after, PAGE);
    if (page.length === 0) return refreshed;
    for (let i = 0; i < page.length; i += CHUNK) refreshed += await refreshChunk(deps, portalId, now, page.slice(i, i + CHUNK));
    after = page[page.length - 1]!;
  }
}

async function refreshChunk(deps: Pick<Deps, 'store'>, portalId: number, now: Date, ids: number[]): Promise<number> {
  await deps.store.transaction(async (tx) => {
    const versions = await tx.analytics.lockExpiryOutlooks(portalId, ids);
    const byMember = new Map<number, LedgerEntry[]>(ids.map((id) => [id, []]));
    for (const e of await tx.ledger.forMembers(portalId, ids)) byMember.get(e.memberId)?.push(e);
    await tx.analytics.saveExpiryOutlooks(
      portalId,
      now,
      ids.map((memberId) => ({
        memberId,
        version: versions.get(memberId)!,
        // An unbounded horizon: every lot expiring after now, so any later window is a sum.
        upcoming: decideExpiry(byMember.get(memberId)!, now, Number.POSITIVE_INFINITY).upcoming,
      })),
    );
  });
  return ids.length;
}
