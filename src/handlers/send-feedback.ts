/**
 * The `crm.feedback` job (issue 9): sends the portal's queued feedback messages — timeline
 * comments through `crm.timeline.comment.add`, notifications through `im.notify.system.add`, both
 * behind the CRM port and mixed in the same `batch` requests of up to 50 commands — and marks each
 * message sent. While a burst is still arriving, a short last batch waits for the rest of it
 * (FEEDBACK_HOLD_MS, at most MAX_HOLD_MS), so a burst costs one request per 50 messages.
 *
 * Once per message: messages are recorded once per key (enqueue-feedback.ts), a sent one is never
 * picked again, and jobs of one key never run concurrently, so two workers cannot send one message.
 * Known limit: a process killed after the portal accepted a batch and before the store recorded
 * it sends that batch again (the portal offers no idempotency key for comments).
 *
 * A message the portal refuses because its entity is gone is dead (never retried); any other
 * failure leaves it queued and fails the job, which the queue retries with backoff.
 */
import { feedbackSendJob } from './enqueue-feedback.js';
import type { Deps, FeedbackMessage } from './ports.js';

/** Messages per round, a multiple of BATCH: only a round's last request may be short. */
const ROUND = 2_500;
/** Commands per `batch` request (the portal's limit). */
const BATCH = 50;
/** After this many failed attempts a message is given up (dead). */
const MAX_ATTEMPTS = 8;
/**
 * While messages are still arriving (the newest was recorded less than this ago), a short last
 * batch is held back for the rest of the burst — a won deal tells up to three people, so a burst
 * of 1 000 deals is 60 full requests, not one short one per worker pass...
 */
export const FEEDBACK_HOLD_MS = 3_000;
/** ...but no message waits longer than this for company. */
const MAX_HOLD_MS = 10_000;

export interface FeedbackReport {
  sent: number;
  failed: number;
  dead: number;
  /** Messages held back for a fuller batch; the job runs again when the hold ends. */
  held: number;
}

/**
 * How many of `messages` (oldest first, all that is queued when fewer than a round) to send now:
 * all of them, or — while the burst is still arriving — only the full batches.
 */
export function toSendNow(messages: FeedbackMessage[], now: Date, holdMs: number): { count: number; until: Date | null } {
  const short = messages.length % BATCH;
  if (!short || holdMs <= 0 || messages.length === ROUND) return { count: messages.length, until: null };
  const held = messages.slice(messages.length - short);
  const newest = Math.max(...held.map((m) => m.createdAt.getTime()));
  const oldest = Math.min(...held.map((m) => m.createdAt.getTime()));
  const until = Math.min(newest + holdMs, oldest + MAX_HOLD_MS);
  if (until <= now.getTime()) return { count: messages.length, until: null };
  return { count: messages.length - short, until: new Date(until) };
}

export async function sendFeedback(deps: Deps, portalId: number): Promise<FeedbackReport> {
  const { store, log } = deps;
  const report: FeedbackReport = { sent: 0, failed: 0, dead: 0, held: 0 };
  const installation = await store.installations.get(portalId);
  if (!installation || installation.status === 'uninstalled' || !installation.tokens) {
    log.info({ portalId }, 'feedback.skipped_not_installed');
    return report;
  }
  const crm = deps.crm.forInstallation(installation);
  for (;;) {
    const queued = await store.feedback.queued(portalId, ROUND);
    if (!queued.length) break;
    const { count, until } = toSendNow(queued, deps.clock.now(), deps.feedbackHoldMs ?? FEEDBACK_HOLD_MS);
    if (until) {
      report.held = queued.length - count;
      // This job is running, so a new one with its key is queued, to run when the hold ends (a
      // message recorded meanwhile coalesces into it).
      await store.jobs.enqueue({ ...feedbackSendJob(portalId), runAt: until }, deps.clock.now());
    }
    const messages = queued.slice(0, count);
    if (!messages.length) break;
    const outcomes = await crm.sendFeedback(messages.map((m) => ({ to: m.to, text: m.text })));
    const sent: number[] = [];
    const failures: { id: number; error: string; dead: boolean }[] = [];
    messages.forEach((m, i) => {
      const o = outcomes[i]!;
      if (o.ok) sent.push(m.id);
      else failures.push({ id: m.id, error: o.error, dead: o.notFound || m.attempts + 1 >= MAX_ATTEMPTS });
    });
    const now = deps.clock.now();
    await store.feedback.markSent(portalId, sent, now);
    await store.feedback.markFailed(portalId, failures);
    report.sent += sent.length;
    report.dead += failures.filter((f) => f.dead).length;
    report.failed += failures.filter((f) => !f.dead).length;
    for (const f of failures) log.warn({ portalId, messageId: f.id, error: f.error, dead: f.dead }, 'feedback.failed');
    // What failed stays queued: the job fails and the queue retries it later, not this loop now.
    if (failures.some((f) => !f.dead) || until || queued.length < ROUND) break;
  }
  if (report.sent || report.failed || report.dead || report.held) log.info({ portalId, ...report }, 'feedback.sent');
  if (report.failed) throw new Error(`${report.failed} feedback messages could not be sent`);
  return report;
}
