/**
 * Bonus expiry (SPEC 5 `expiry.days`; a `bonus.expire` job per portal, hourly). Credits carry
 * their `expires_at` from the moment they are written (program version in force, counted from
 * when they become available); this job finds the members with a credit whose expiry passed
 * since its last run, replays each one's whole ledger through the FIFO rule
 * (src/rules/expiry.ts: spending consumes the oldest bonus first, only the unspent remainder of
 * a credit expires) and appends one `expiry` entry per expired credit, keyed `expiry:<credit id>`
 * — so a re-run, a retry or a second instance writes nothing twice. The entries, the `crm.project`
 * job for the members' BALANCE and the moved watermark are committed together, per chunk of
 * members; a crash leaves the watermark behind and the next run finds the same members again.
 *
 * A deal reversed after its reward expired would take the same bonus twice; the rule gives the
 * expiry back instead (a positive `expiry` entry keyed `expiry:<credit id>:back:<reversal id>`),
 * so members with reversals since the last run are replayed too. Until the next run the balance
 * may show the reversal alone.
 */
import { decideExpiry } from '../rules/expiry.js';
import type { Deps, LedgerEntry, NewLedgerEntry } from './ports.js';

/** Members whose ledgers are replayed in one transaction. */
const CHUNK = 200;

export async function expireBonus(deps: Deps, portalId: number): Promise<number> {
  const installation = await deps.store.installations.get(portalId);
  if (!installation || installation.status !== 'active') return 0;
  const now = deps.clock.now();
  const since = (await deps.store.watermarks.get(portalId, ['bonus.expire'])).get('bonus.expire')?.mark ?? new Date(0);
  if (now <= since) return 0;
  const memberIds = await deps.store.ledger.expiring(portalId, since, now);

  let written = 0;
  for (let i = 0; i === 0 || i < memberIds.length; i += CHUNK) {
    const chunk = memberIds.slice(i, i + CHUNK);
    const last = i + CHUNK >= memberIds.length;
    written += await deps.store.transaction(async (tx) => {
      // The lock redemptions, adjustments and the loop take for a member's own balance: what is
      // left of a credit is decided while nothing else spends it.
      await tx.lockMany(portalId, chunk.map((id) => `client:${id}`));
      const byMember = new Map<number, LedgerEntry[]>(chunk.map((id) => [id, []]));
      for (const e of await tx.ledger.forMembers(portalId, chunk)) byMember.get(e.memberId)?.push(e);
      const planned: NewLedgerEntry[] = [];
      for (const [memberId, entries] of byMember) {
        for (const d of decideExpiry(entries, now).due) {
          planned.push({
            portalId,
            memberId,
            amount: d.amount,
            reason: 'expiry',
            kind: 'correction',
            dealId: null,
            level: 0,
            programVersion: null,
            idempotencyKey: d.idempotencyKey,
            // Off the balance from the instant it expired, whenever the job got to it.
            availableAt: d.at,
            expiresAt: null,
            causedBy: 'expiry',
            comment: d.amount < 0 ? `expired: unspent bonus of entry ${d.lotId}` : `expiry of entry ${d.lotId} given back: its deal was reversed`,
            createdAt: now,
          });
        }
      }
      const { inserted } = await tx.ledger.append(planned);
      const touched = [...new Set(inserted.map((e) => e.memberId))];
      if (touched.length) {
        await tx.jobs.enqueue({ portalId, kind: 'crm.project', key: `expiry:${now.toISOString()}:${i}`, payload: { members: touched, deals: [] } }, now);
      }
      if (last) await tx.watermarks.save(portalId, 'bonus.expire', now, now);
      for (const e of inserted) deps.log.info({ portalId, memberId: e.memberId, amount: e.amount, entryId: e.id }, 'bonus.expired');
      return inserted.length;
    });
  }
  return written;
}
