/**
 * Feedback in the CRM (issue 9): the one entry point every use case calls to tell the portal
 * something — a timeline comment on a deal, contact or lead, or a notification to a user.
 *
 * Call it inside the transaction that records what the message is about (the ledger entries, the
 * referral): the messages and the `crm.feedback` job that sends them then commit with it, or not
 * at all. Each item's `key` is unique per portal and names the fact, e.g. `entry:41:deal` or
 * `redemption:<ledger entry id>:deal`: an item whose key was recorded before (a duplicated event, a
 * retried run) is skipped, so each message is sent once. Texts are rendered here, in the portal's
 * language, so callers pass events, not strings.
 */
import { feedbackText, type FeedbackEvent } from '../rules/feedback-text.js';
import { portalLang } from '../rules/referral-landing.js';
import type { FeedbackRecipient, NewFeedbackMessage, NewJob, PortalLang, Repos } from './ports.js';

export type { FeedbackEvent } from '../rules/feedback-text.js';

export interface FeedbackItem {
  /** Unique per portal and message: the same key is never recorded (or sent) twice. */
  key: string;
  /** A CRM timeline (`{ entity, id }`) or a portal user (`{ userId }`). */
  to: FeedbackRecipient;
  event: FeedbackEvent;
}

/**
 * Record the items' messages and queue the job that sends them (coalesced per portal). Returns how
 * many messages were new. `tx` is the caller's transaction (TxRepos) — or the store, when the fact
 * itself was recorded by one statement outside a transaction.
 */
export async function enqueueFeedback(tx: Pick<Repos, 'feedback' | 'jobs' | 'installations'>, portalId: number, items: FeedbackItem[], now: Date): Promise<number> {
  if (!items.length) return 0;
  // The portal's language: its install wizard's LANG, else its domain (as on the referral page).
  const installation = await tx.installations.get(portalId);
  const lang: PortalLang = installation ? portalLang(installation.domain, installation.lang) : 'ru';
  const messages: NewFeedbackMessage[] = items.map((item) => ({
    key: item.key,
    to: item.to,
    text: feedbackText(lang, item.event, 'userId' in item.to ? 'user' : item.to.entity === 'deal' ? 'deal' : 'person'),
  }));
  const fresh = await tx.feedback.record(portalId, messages, now);
  // One queued job per portal gathers every message recorded until it runs (the worker runs it after
  // the run's CRM changes, and lingers between runs), and a short last batch waits for the rest of
  // a burst (send-feedback.ts), so a burst goes out in full batches of 50.
  if (fresh) await tx.jobs.enqueue(feedbackSendJob(portalId), now);
  return fresh;
}

/** The job that sends a portal's queued messages: one per portal while queued (they coalesce). */
export function feedbackSendJob(portalId: number): NewJob {
  return { portalId, kind: 'crm.feedback', key: 'send', payload: {} };
}
