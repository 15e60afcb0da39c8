/**
 * Fraud checks and feedback in the CRM through createApp (issue 9), with msw playing the portal:
 * self-referral by a shared phone or e-mail (normalised), the reason stored and shown by the read
 * API, and the timeline comments and notifications the loop owes the CRM — the exact `batch`
 * commands, each message sent once across duplicated events and retried sends.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crmEvent } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { installApp, sendEvent } from '../support/scenario.js';
import { backoffMs } from '../../server/jobs/worker.js';
import { enqueueFeedback } from '../../src/handlers/enqueue-feedback.js';
import { reconcileCrm } from '../../src/handlers/reconcile-crm.js';
import { FEEDBACK_HOLD_MS, sendFeedback } from '../../src/handlers/send-feedback.js';
import { READ_SELECT } from '../../src/bitrix/crm.js';

let h: Harness;
let pid: number;
let offset = 0;
const clock = { now: () => new Date(Date.UTC(2026, 11, 3, 9, 0, 0) + offset) };
const MANAGER = 'user-token-manager-fraud-0001';

const get = (path: string) => request(h.app).get(path).set('Authorization', `Bearer ${MANAGER}`).set('X-Sarafan-Portal', h.portal.memberId);

/** A contact with these fields who wins a first deal and so is enrolled. */
async function referrer(fields: Record<string, unknown>): Promise<{ contact: number; code: string; memberId: number }> {
  const contact = h.portal.add('contact', { NAME: 'Реферер', ...fields });
  const deal = h.portal.add('deal', { CONTACT_ID: contact, STAGE_ID: 'WON', OPPORTUNITY: 1 });
  await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
  await h.worker.drain();
  const member = await h.store.members.findByEntity(pid, 'contact', contact);
  return { contact, code: member!.code!, memberId: member!.id };
}

const commands = (method: string) => h.portal.commands(method).map((c) => c.params);
const comments = () => commands('crm.timeline.comment.add').map((p) => p.fields as Record<string, string>);

beforeAll(async () => {
  h = await createHarness({ clock });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  pid = await installApp(h);
});

afterAll(async () => {
  await h.close();
});

describe('self-referral by a shared phone or e-mail', () => {
  it('rejects a lead with the referrer’s phone written another way, reads the referrer once, and comments the lead once', async () => {
    const r = await referrer({ PHONE: [{ ID: '1', TYPE_ID: 'PHONE', VALUE: '+7 (999) 123-45-67', VALUE_TYPE: 'WORK' }] });
    const lead = h.portal.add('lead', { TITLE: 'Заявка', UF_CRM_SARAFAN_REF_CODE: r.code.toLowerCase(), PHONE: [{ ID: '2', TYPE_ID: 'PHONE', VALUE: '8 999 1234567', VALUE_TYPE: 'MOBILE' }] });
    h.portal.resetCalls();
    // Bitrix24 sends events twice at times.
    await sendEvent(h, crmEvent(h.portal, 'ONCRMLEADADD', lead));
    await sendEvent(h, crmEvent(h.portal, 'ONCRMLEADADD', lead));
    await h.worker.drain();

    const leadMember = await h.store.members.findByEntity(pid, 'lead', lead);
    const stored = await h.store.referrals.ofReferees(pid, [leadMember!.id]);
    expect(stored.map((x) => [x.status, x.rejectReason, x.referrerMemberId, x.code])).toEqual([['rejected', 'self_referral', r.memberId, r.code]]);

    // The reads: the lead (PHONE and EMAIL named: multi-fields come only when named), then the
    // referrer, known by its code only, in one more list command.
    const lists = h.portal.commands().filter((c) => /\.list$/.test(c.method));
    expect(lists.map((c) => [c.method, c.params.filter, c.params.select])).toEqual([
      ['crm.lead.list', { '@ID': [String(lead)] }, READ_SELECT.lead],
      ['crm.contact.list', { '@ID': [String(r.contact)] }, READ_SELECT.contact],
    ]);
    // One comment on the lead, in the portal's language, with the reason; nobody is notified.
    expect(comments()).toEqual([
      { ENTITY_ID: String(lead), ENTITY_TYPE: 'lead', COMMENT: `Сарафан: рекомендация по коду ${r.code} отклонена — самоприглашение (тот же клиент, телефон или e-mail).` },
    ]);
    expect(commands('im.notify.system.add')).toEqual([]);
    expect(h.portal.timeline.filter((t) => t.entity === 'lead' && t.id === lead)).toHaveLength(1);

    // The lead changes again (a manager edits it): the rejection is not commented twice.
    h.portal.resetCalls();
    h.portal.update('lead', lead, { TITLE: 'Заявка 2' });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMLEADUPDATE', lead));
    await h.worker.drain();
    expect(comments()).toEqual([]);
    expect(await h.store.referrals.ofReferees(pid, [leadMember!.id])).toHaveLength(1);

    // The read API shows the rejection and its reason.
    const res = await get(`/api/members/lead/${lead}`);
    expect(res.status).toBe(200);
    expect(res.body.referral).toMatchObject({ status: 'rejected', rejectReason: 'self_referral', code: r.code, referrer: { entity: 'contact', id: r.contact }, override: null });
    expect(res.body.referrer).toBeNull();
  });

  it('rejects a deal’s client sharing the referrer’s e-mail (case and spaces aside); the deal and the client are commented, the deal API shows why', async () => {
    const r = await referrer({ EMAIL: [{ ID: '3', TYPE_ID: 'EMAIL', VALUE: 'anna@mail.ru', VALUE_TYPE: 'WORK' }] });
    const client = h.portal.add('contact', { NAME: 'Анна (второй контакт)', EMAIL: [{ ID: '4', TYPE_ID: 'EMAIL', VALUE: ' Anna@Mail.RU', VALUE_TYPE: 'HOME' }] });
    const deal = h.portal.add('deal', { CONTACT_ID: client, STAGE_ID: 'WON', OPPORTUNITY: 5000, UF_CRM_SARAFAN_REF_CODE: r.code, ASSIGNED_BY_ID: 7 });
    h.portal.resetCalls();
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
    await h.worker.drain();

    expect(await h.store.ledger.forDeal(pid, deal)).toEqual([]);
    const text = `Сарафан: рекомендация по коду ${r.code} отклонена — самоприглашение (тот же клиент, телефон или e-mail).`;
    expect(comments()).toEqual([
      { ENTITY_ID: String(client), ENTITY_TYPE: 'contact', COMMENT: text },
      { ENTITY_ID: String(deal), ENTITY_TYPE: 'deal', COMMENT: text },
    ]);
    // The feedback went out as one batch of its own.
    const feedbackBatches = h.portal.calls.filter((c) => c.method === 'batch' && c.commands?.some((x) => x.method === 'crm.timeline.comment.add'));
    expect(feedbackBatches).toHaveLength(1);
    expect(feedbackBatches[0]!.commands!.map((x) => x.method)).toEqual(['crm.timeline.comment.add', 'crm.timeline.comment.add']);

    const res = await get(`/api/deals/${deal}`);
    expect(res.status).toBe(200);
    expect(res.body.referral).toMatchObject({ status: 'rejected', rejectReason: 'self_referral', code: r.code, referrer: { entity: 'contact', id: r.contact }, source: 'deal' });
    expect(res.body.entries).toEqual([]);
  });

  it('accepts a client whose phone and e-mail differ from the referrer’s, and comments the attribution', async () => {
    const r = await referrer({ PHONE: [{ ID: '5', TYPE_ID: 'PHONE', VALUE: '+7 999 000-00-01', VALUE_TYPE: 'WORK' }] });
    const client = h.portal.add('contact', { NAME: 'Борис', UF_CRM_SARAFAN_REF_CODE: r.code, PHONE: [{ ID: '6', TYPE_ID: 'PHONE', VALUE: '+7 999 000-00-02', VALUE_TYPE: 'WORK' }] });
    h.portal.resetCalls();
    await sendEvent(h, crmEvent(h.portal, 'ONCRMCONTACTADD', client));
    await h.worker.drain();
    const member = await h.store.members.findByEntity(pid, 'contact', client);
    expect((await h.store.referrals.activeFor(pid, member!.id))?.referrerMemberId).toBe(r.memberId);
    expect(comments()).toEqual([{ ENTITY_ID: String(client), ENTITY_TYPE: 'contact', COMMENT: `Сарафан: пришёл по рекомендации по коду ${r.code}, пригласил контакт #${r.contact}.` }]);
  });
});

describe('feedback on credits and reversals', () => {
  it('comments the deal and the referrer and notifies the responsible user once, whatever the duplicates; a reversal is commented too', async () => {
    const r = await referrer({});
    const client = h.portal.add('contact', { NAME: 'Вера', UF_CRM_SARAFAN_REF_CODE: r.code });
    h.portal.resetCalls();
    await sendEvent(h, crmEvent(h.portal, 'ONCRMCONTACTADD', client));
    await h.worker.drain();
    // A client with neither phone nor e-mail shares none: the referrer is not read.
    expect(h.portal.commands().filter((c) => /\.(list|get)$/.test(c.method)).map((c) => [c.method, c.params.filter])).toEqual([['crm.contact.list', { '@ID': [String(client)] }]]);
    const deal = h.portal.add('deal', { CONTACT_ID: client, STAGE_ID: 'WON', OPPORTUNITY: 20000, ASSIGNED_BY_ID: 7 });
    h.portal.resetCalls();
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
    await h.worker.drain();
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
    await h.worker.drain();

    const [credit] = await h.store.ledger.forDeal(pid, deal);
    expect(credit).toMatchObject({ memberId: r.memberId, amount: 2000_00, kind: 'credit' });
    expect(comments()).toEqual([
      { ENTITY_ID: String(deal), ENTITY_TYPE: 'deal', COMMENT: `Сарафан: Награда за рекомендацию (уровень 1) 2 000.00 RUB начислена за сделку #${deal} (контакт #${r.contact}).` },
      { ENTITY_ID: String(r.contact), ENTITY_TYPE: 'contact', COMMENT: `Сарафан: Награда за рекомендацию (уровень 1) 2 000.00 RUB начислена за сделку #${deal}.` },
    ]);
    expect(commands('im.notify.system.add')).toEqual([
      { USER_ID: '7', MESSAGE: `Сарафан: Награда за рекомендацию (уровень 1) 2 000.00 RUB начислена за сделку #${deal} (контакт #${r.contact}).` },
    ]);
    expect((await h.store.feedback.byKeyPrefix(pid, `entry:${credit!.id}:`)).map((m) => [m.key, m.status])).toEqual([
      [`entry:${credit!.id}:deal`, 'sent'],
      [`entry:${credit!.id}:person`, 'sent'],
      [`entry:${credit!.id}:notify`, 'sent'],
    ]);

    h.portal.resetCalls();
    h.portal.update('deal', deal, { STAGE_ID: 'LOSE' });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
    await h.worker.drain();
    expect(comments().map((c) => [c.ENTITY_TYPE, c.ENTITY_ID, c.COMMENT])).toEqual([
      ['deal', String(deal), `Сарафан: Награда за рекомендацию (уровень 1) 2 000.00 RUB отменена за сделку #${deal} (контакт #${r.contact}).`],
      ['contact', String(r.contact), `Сарафан: Награда за рекомендацию (уровень 1) 2 000.00 RUB отменена за сделку #${deal}.`],
    ]);
    expect(commands('im.notify.system.add')).toEqual([]);
  });

  it('a comment the portal refuses is retried later, alone: every message reaches the portal exactly once', async () => {
    const r = await referrer({});
    const client = h.portal.add('contact', { NAME: 'Глеб', UF_CRM_SARAFAN_REF_CODE: r.code });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMCONTACTADD', client));
    await h.worker.drain();
    const deal = h.portal.add('deal', { CONTACT_ID: client, STAGE_ID: 'WON', OPPORTUNITY: 3000, ASSIGNED_BY_ID: 7 });
    h.portal.resetCalls();
    h.portal.failCommands('crm.timeline.comment.add', 1); // the deal's comment fails once
    const before = h.portal.timeline.length;
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
    await h.worker.drain();
    // The person's comment and the notification went through; the deal's waits for the retry.
    expect(h.portal.timeline.slice(before).map((t) => [t.entity, t.id])).toEqual([['contact', r.contact]]);
    expect(h.portal.notifications.at(-1)?.text).toContain(`#${deal}`);
    const [credit] = await h.store.ledger.forDeal(pid, deal);
    expect((await h.store.feedback.byKeyPrefix(pid, `entry:${credit!.id}:`)).map((m) => [m.key, m.status, m.attempts])).toEqual([
      [`entry:${credit!.id}:deal`, 'queued', 1],
      [`entry:${credit!.id}:person`, 'sent', 1],
      [`entry:${credit!.id}:notify`, 'sent', 1],
    ]);
    // Nothing is resent before the retry is due.
    h.portal.resetCalls();
    expect(await h.worker.drain()).toBe(0);
    offset += backoffMs(1);
    expect(await h.worker.drain()).toBe(1);
    expect(h.portal.commands().map((c) => c.method)).toEqual(['crm.timeline.comment.add']);
    expect(h.portal.timeline.slice(before).map((t) => [t.entity, t.id])).toEqual([
      ['contact', r.contact],
      ['deal', deal],
    ]);
    expect((await h.store.feedback.byKeyPrefix(pid, `entry:${credit!.id}:`)).every((m) => m.status === 'sent')).toBe(true);
  });
});

describe('enqueueFeedback, the entry point of other use cases', () => {
  it('renders texts in the portal’s language (the installation’s), records each key once, and sends them with the next crm.feedback run', async () => {
    expect((await h.store.installations.get(pid))?.lang).toBe('ru'); // from the install wizard's LANG
    const deal = h.portal.add('deal', { STAGE_ID: 'NEW', OPPORTUNITY: 100 });
    const items = [{ key: `redemption:test-${deal}:deal`, to: { entity: 'deal' as const, id: deal }, event: { type: 'redeemed' as const, amount: 250_00, currency: 'RUB', dealId: deal } }];
    {
      expect(await h.store.transaction((tx) => enqueueFeedback(tx, pid, items, clock.now()))).toBe(1);
      // A retried caller records nothing twice.
      expect(await h.store.transaction((tx) => enqueueFeedback(tx, pid, items, clock.now()))).toBe(0);
      // Rolled back with the caller's transaction: nothing is recorded.
      const other = [{ ...items[0]!, key: `redemption:rolled-back-${deal}:deal` }];
      await expect(
        h.store.transaction(async (tx) => {
          await enqueueFeedback(tx, pid, other, clock.now());
          throw new Error('the redemption failed');
        }),
      ).rejects.toThrow('the redemption failed');
      expect(await h.store.feedback.byKeyPrefix(pid, `redemption:rolled-back-${deal}`)).toEqual([]);

      h.portal.resetCalls();
      await h.worker.drain();
      expect(comments()).toEqual([{ ENTITY_ID: String(deal), ENTITY_TYPE: 'deal', COMMENT: `Сарафан: списано 250.00 RUB бонусов в оплату сделки #${deal}.` }]);
    }
  });
});

describe('feedback left queued', () => {
  // A portal where nothing changed since the watermark (this test double only answers the listing).
  const quietPortal = () => ({ ...h.deps, crmScanner: { changedSince: async () => ({ entities: [], more: false, listedAt: clock.now() }) } });

  it('the periodic reconciliation queues the send again for messages whose job gave up', async () => {
    const deal = h.portal.add('deal', { STAGE_ID: 'NEW', OPPORTUNITY: 100 });
    await h.worker.drain();
    // Recorded without a send job: what is left once a send job died after its retries.
    expect(await h.store.feedback.record(pid, [{ key: `left:${deal}`, to: { entity: 'deal', id: deal }, text: 'Сарафан: проверка' }], clock.now())).toBe(1);
    expect(await h.worker.drain()).toBe(0);
    h.portal.resetCalls();
    await reconcileCrm(quietPortal(), pid);
    await h.worker.drain();
    expect(comments().filter((c) => c.COMMENT === 'Сарафан: проверка')).toEqual([{ ENTITY_ID: String(deal), ENTITY_TYPE: 'deal', COMMENT: 'Сарафан: проверка' }]);
    expect((await h.store.feedback.byKeyPrefix(pid, `left:${deal}`))[0]?.status).toBe('sent');
    // Nothing left: the next reconciliation queues no send.
    h.portal.resetCalls();
    await reconcileCrm(quietPortal(), pid);
    await h.worker.drain();
    expect(comments()).toEqual([]);
  });
});

describe('a burst of feedback', () => {
  const record = (prefix: string, deal: number, comments: number, notes: number) =>
    h.store.feedback.record(
      pid,
      [
        ...Array.from({ length: comments }, (_, i) => ({ key: `${prefix}:c${i}`, to: { entity: 'deal' as const, id: deal }, text: `${prefix} comment ${i}` })),
        ...Array.from({ length: notes }, (_, i) => ({ key: `${prefix}:n${i}`, to: { userId: 7 }, text: `${prefix} note ${i}` })),
      ],
      clock.now(),
    );
  const batches = () => h.portal.calls.filter((c) => c.method === 'batch').map((c) => c.commands!.map((x) => x.method));

  it('mixes comments and notifications in full batches of 50, and holds a short last one while the burst is young', async () => {
    const deal = h.portal.add('deal', { STAGE_ID: 'NEW', OPPORTUNITY: 100 });
    await h.worker.drain();
    expect(await record('burst', deal, 30, 23)).toBe(53);
    h.portal.resetCalls();

    const report = await sendFeedback({ ...h.deps, feedbackHoldMs: FEEDBACK_HOLD_MS }, pid);
    expect(report).toEqual({ sent: 50, failed: 0, dead: 0, held: 3 });
    // One request: the 30 comments, then the first 20 notifications (oldest first).
    expect(batches()).toEqual([[...Array<string>(30).fill('crm.timeline.comment.add'), ...Array<string>(20).fill('im.notify.system.add')]]);
    const statuses = async () => (await h.store.feedback.byKeyPrefix(pid, 'burst:')).map((m) => m.status);
    expect((await statuses()).filter((s) => s === 'queued')).toHaveLength(3);

    // The rest waits for the hold: nothing is due before it ends...
    h.portal.resetCalls();
    offset += FEEDBACK_HOLD_MS - 1;
    expect(await h.worker.drain()).toBe(0);
    expect(batches()).toEqual([]);
    // ...then the job queued for its end sends them in one request.
    offset += 1;
    expect(await h.worker.drain()).toBe(1);
    expect(batches()).toEqual([Array<string>(3).fill('im.notify.system.add')]);
    expect(await statuses()).toEqual(Array<string>(53).fill('sent'));
  });

  it('sends a short batch at once when the burst is over, and never holds a message past 10 s', async () => {
    const deal = h.portal.add('deal', { STAGE_ID: 'NEW', OPPORTUNITY: 100 });
    await h.worker.drain();
    const deps = { ...h.deps, feedbackHoldMs: FEEDBACK_HOLD_MS };
    await record('quiet', deal, 4, 0);
    offset += FEEDBACK_HOLD_MS;
    h.portal.resetCalls();
    expect(await sendFeedback(deps, pid)).toEqual({ sent: 4, failed: 0, dead: 0, held: 0 });
    expect(batches()).toEqual([Array<string>(4).fill('crm.timeline.comment.add')]);

    // A trickle: a message every 2 s keeps the newest young, but the oldest waits 10 s at most.
    await record('trickle-0', deal, 1, 0);
    for (let i = 1; i <= 4; i++) {
      offset += 2_000;
      await record(`trickle-${i}`, deal, 1, 0);
      expect((await sendFeedback(deps, pid)).held).toBe(i + 1);
    }
    offset += 2_000; // 10 s since the first
    await record('trickle-5', deal, 1, 0);
    h.portal.resetCalls();
    expect(await sendFeedback(deps, pid)).toEqual({ sent: 6, failed: 0, dead: 0, held: 0 });
    expect(batches()).toHaveLength(1);
    await h.worker.drain(); // the job queued by the holds finds nothing left
  });
});
