/**
 * The `crm.feedback` job (issue 9): sends the portal's queued feedback messages — timeline
 * comments through `crm.timeline.comment.add`, notifications through `im.notify.system.add`, both
 * behind the CRM port — in `batch` requests of up to 50 commands, and marks each message sent.
 *
 * Once per message: messages are recorded once per key (enqueue-feedback.ts), a sent one is never
 * picked again, and jobs of one key never run concurrently, so two workers cannot send one message.
 * Known limit: a process killed after the portal accepted a batch and before the store recorded
 * it sends that batch again (the portal offers no idempotency key for comments).
 *
 * A message the portal refuses because its entity is gone is dead (never retried); any other
 * failure leaves it queued and fails the job, which the queue retries with backoff.
 */
import type { CrmEntity, Deps, FeedbackMessage } from './ports.js';

/**
 * Messages per round. The gateway sends each kind in `batch` requests of 50 commands, so only the
 * last request of each kind in a round may be short: the bigger the round, the fewer requests.
 */
const ROUND = 2_500;
/** After this many failed attempts a message is given up (dead). */
const MAX_ATTEMPTS = 8;

export interface FeedbackReport {
  sent: number;
  failed: number;
  dead: number;
}

export async function sendFeedback(deps: Deps, portalId: number): Promise<FeedbackReport> {
  const { store, log } = deps;
  const report: FeedbackReport = { sent: 0, failed: 0, dead: 0 };
  const installation = await store.installations.get(portalId);
  if (!installation || installation.status === 'uninstalled' || !installation.tokens) {
    log.info({ portalId }, 'feedback.skipped_not_installed');
    return report;
  }
  const crm = deps.crm.forInstallation(installation);
  for (;;) {
    const messages = await store.feedback.queued(portalId, ROUND);
    if (!messages.length) break;
    const comments = messages.filter((m): m is FeedbackMessage & { to: { entity: CrmEntity; id: number } } => 'entity' in m.to);
    const notes = messages.filter((m): m is FeedbackMessage & { to: { userId: number } } => 'userId' in m.to);
    const [commentOutcomes, noteOutcomes] = [
      await crm.addTimelineComments(comments.map((m) => ({ entity: m.to.entity, id: m.to.id, text: m.text }))),
      await crm.notifyUsers(notes.map((m) => ({ userId: m.to.userId, text: m.text }))),
    ];
    const sent: number[] = [];
    const failures: { id: number; error: string; dead: boolean }[] = [];
    const settle = (m: FeedbackMessage, o: (typeof commentOutcomes)[number]) => {
      if (o.ok) sent.push(m.id);
      else failures.push({ id: m.id, error: o.error, dead: o.notFound || m.attempts + 1 >= MAX_ATTEMPTS });
    };
    comments.forEach((m, i) => settle(m, commentOutcomes[i]!));
    notes.forEach((m, i) => settle(m, noteOutcomes[i]!));
    const now = deps.clock.now();
    await store.feedback.markSent(portalId, sent, now);
    await store.feedback.markFailed(portalId, failures);
    report.sent += sent.length;
    report.dead += failures.filter((f) => f.dead).length;
    report.failed += failures.filter((f) => !f.dead).length;
    for (const f of failures) log.warn({ portalId, messageId: f.id, error: f.error, dead: f.dead }, 'feedback.failed');
    // What failed stays queued: the job fails and the queue retries it later, not this loop now.
    if (failures.some((f) => !f.dead) || messages.length < ROUND) break;
  }
  if (report.sent || report.failed || report.dead) log.info({ portalId, ...report }, 'feedback.sent');
  if (report.failed) throw new Error(`${report.failed} feedback messages could not be sent`);
  return report;
}
