/**
 * RFM segments, nightly (issue 12; a `segments.rfm` job per active portal, '47 2 * * *'): every
 * client's recency, frequency and monetary value are computed in one query from the deals
 * Sarafan keeps and the install's history, ranked by the pure rule against the program's `rfm`
 * boundaries, stored, and written to UF_CRM_SARAFAN_SEGMENT only where the segment differs from
 * what was last written — 50 `crm.<entity>.update` commands per `batch` request, no per-client
 * call. A person who is no longer a client (their won deals deleted or lost) has the field
 * cleared once.
 *
 * Each write is recorded only after it succeeded, batch by batch, so a failure leaves the rest
 * pending: the job then fails and the queue retries it, and the retry writes only what is still
 * pending. An entity the portal no longer has counts as written (there is nothing to write to).
 *
 * Known limits: the history's deals in another currency are converted with the portal's stored
 * rates (portal_settings, refreshed by the loop's reads); a deal in a currency without a rate
 * still counts for R and F but not for M. Segments are as of the run: a deal won during the day
 * moves its client at the next night.
 */
import { crossRate } from '../rules/convert-currency.js';
import { recencyDays, rfmBoundaries, segmentOf, type RfmSegment } from '../rules/segment-clients.js';
import { PortalCallError } from './errors.js';
import { currentProgram } from './program-versions.js';
import type { Deps, PersonRef, SegmentRow } from './ports.js';

/** Commands per `batch` request (the portal's own limit). */
const BATCH = 50;

export interface SegmentRunReport {
  clients: number;
  /** Writes that succeeded this run (segments set or cleared). */
  written: number;
  cleared: number;
  /** Writes the portal refused this run; the job fails and is retried. */
  failed: number;
  /** Won deals left out of M for want of a rate to the program currency. */
  unconvertedDeals: number;
}

export class SegmentWritesFailed extends Error {
  constructor(readonly failed: number, readonly pending: number, cause?: unknown) {
    super(`segments.rfm: ${failed} of ${pending} segment writes failed${cause instanceof Error ? `: ${cause.message}` : ''}`);
    this.name = 'SegmentWritesFailed';
  }
}

export async function segmentClients(deps: Deps, portalId: number): Promise<SegmentRunReport | null> {
  const { store } = deps;
  const installation = await store.installations.get(portalId);
  if (!installation || installation.status !== 'active' || !installation.tokens) return null;
  const now = deps.clock.now();
  const { program } = await currentProgram(store.programs, portalId, now);
  const settings = await store.portalSettings.get(portalId);
  const rates = (settings?.currencies ?? [])
    .map((c) => ({ currency: c.currency, rate: crossRate(settings!.currencies, c.currency, program.currency) }))
    .filter((r): r is { currency: string; rate: string } => r.rate !== null && r.currency !== program.currency);

  // Durations for the log only (operations: how long the query and the writes take on a big portal).
  const started = performance.now();
  const facts = await store.segments.clientFacts(portalId, { currency: program.currency, rates });
  const factsMs = Math.round(performance.now() - started);
  const boundaries = rfmBoundaries(program.rfm);
  const computed = facts.map((f) => ({
    client: f.client,
    segment: segmentOf({ recencyDays: recencyDays(f.lastWonAt, now), wonDeals: f.wonDeals, wonAmount: f.wonAmount }, boundaries),
  }));
  await store.segments.saveComputed(portalId, computed, now);

  const pending = await store.segments.pendingWrites(portalId);
  const writesStarted = performance.now();
  const crm = deps.crm.forInstallation(installation);
  const report: SegmentRunReport = { clients: facts.length, written: 0, cleared: 0, failed: 0, unconvertedDeals: facts.reduce((n, f) => n + f.unconvertedDeals, 0) };
  for (let i = 0; i < pending.length; i += BATCH) {
    const part = pending.slice(i, i + BATCH);
    let outcomes;
    try {
      outcomes = await crm.writeProjections(part.map((p) => ({ entity: p.client.entity, id: p.client.id, values: { segment: p.segment } })));
    } catch (e) {
      // The portal itself failed (not one command): the rest waits for the retry.
      if (!(e instanceof PortalCallError)) throw e;
      throw new SegmentWritesFailed(report.failed + pending.length - i, pending.length, e);
    }
    const done: { client: PersonRef; segment: RfmSegment | null }[] = [];
    part.forEach((p: SegmentRow, k) => {
      const outcome = outcomes[k]!;
      if (outcome.ok || outcome.notFound) {
        done.push({ client: p.client, segment: p.segment });
        if (outcome.ok) {
          report.written++;
          if (p.segment === null) report.cleared++;
        }
        return;
      }
      report.failed++;
      deps.log.warn({ portalId, entity: p.client.entity, id: p.client.id, error: outcome.error }, 'segments.write_failed');
    });
    await store.segments.markWritten(portalId, done, deps.clock.now());
  }
  const ms = { factsMs, writeMs: Math.round(performance.now() - writesStarted), totalMs: Math.round(performance.now() - started) };
  deps.log.info({ portalId, ...report, pending: pending.length, ...ms }, 'segments.computed');
  if (report.failed) throw new SegmentWritesFailed(report.failed, pending.length);
  return report;
}
