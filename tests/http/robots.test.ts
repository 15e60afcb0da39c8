/**
 * POST /b24/robots/:code through createApp (issue 10, reference §8.2–8.3): the real robot payload
 * (bracket form, document_id[0..2], properties[…], auth[…]) is authenticated, stored once per
 * event token and queued; the worker answers with exactly one `bizproc.event.send` (plus a
 * `bizproc.activity.log` line) — ok = N with the reason in the portal's language when the robot
 * cannot act. Each test checks the acknowledgement, the ledger and the exact answer the portal got.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { robotTokenHash } from '../../src/handlers/receive-robot-call.js';
import { createWorker } from '../../server/jobs/worker.js';
import { form } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { enrolledReferrer, FORM, installApp, referredWin } from '../support/scenario.js';
import type { SqlStore } from '../../src/store/open-store.js';

let h: Harness;
let pid: number;
const ADMIN = 'user-token-admin-robots-0001';
let seq = 0;
// Moved only by the test that needs a failed answer's retry to come due.
let offset = 0;
const clock = { now: () => new Date(Date.now() + offset) };

const raw = <T extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (h.store as SqlStore).rawQuery<T>(sql, params);
const count = async (sql: string, params: unknown[] = []) => Number((await raw<{ n: string }>(sql, params))[0]!.n);

const DOC_CLASS = { DEAL: 'CCrmDocumentDeal', LEAD: 'CCrmDocumentLead', CONTACT: 'CCrmDocumentContact' } as const;

/** The payload Bitrix24 posts when a robot runs (reference §8.2), with a fresh event token the portal waits on. */
function robotPayload(code: string, document: string, properties: Record<string, string> = {}, opts: { token?: string; applicationToken?: string | null; wait?: boolean } = {}) {
  const token = opts.token ?? `55c1dc1c3f0d75.${++seq}${Date.now()}|A51601_82584_96831_${seq}|sig${seq}`;
  if (opts.wait !== false) h.portal.waitingRobots.add(token);
  const kind = document.split('_')[0] as keyof typeof DOC_CLASS;
  const auth: Record<string, string> = {
    access_token: h.portal.accessToken,
    expires: String(Math.floor(Date.now() / 1000) + 3600),
    expires_in: '3600',
    scope: 'crm,bizproc',
    domain: h.portal.domain,
    server_endpoint: 'https://oauth.bitrix.info/rest/',
    status: 'F',
    client_endpoint: h.portal.clientEndpoint,
    member_id: h.portal.memberId,
    user_id: '1',
    refresh_token: h.portal.refreshToken,
  };
  if (opts.applicationToken !== null) auth.application_token = opts.applicationToken ?? h.portal.applicationToken;
  const body = form({
    workflow_id: `6a1b${seq}.wf`,
    code,
    document_id: ['crm', DOC_CLASS[kind] ?? 'CCrmDocumentDeal', document],
    document_type: ['crm', DOC_CLASS[kind] ?? 'CCrmDocumentDeal', kind],
    event_token: token,
    properties,
    use_subscription: 'Y',
    timeout_duration: '0',
    ts: String(Math.floor(Date.now() / 1000)),
    auth,
  });
  return { token, body };
}

const post = (code: string, body: string) => request(h.app).post(`/b24/robots/${code}`).set('Content-Type', FORM).send(body);

/** Post a robot call, check the acknowledgement, run the worker; the portal's answers and log lines for the token. */
async function run(code: string, document: string, properties: Record<string, string> = {}) {
  const { token, body } = robotPayload(code, document, properties);
  h.portal.resetCalls();
  const ack = await post(code, body);
  expect(ack.status).toBe(200);
  expect(ack.body).toEqual({ status: 'queued' });
  // Acknowledged before any work: nothing went to the portal yet.
  expect(h.portal.calls).toEqual([]);
  await h.worker.drain();
  const answers = h.portal.robotAnswers.filter((a) => a.token === token);
  expect(answers).toHaveLength(1);
  expect(h.portal.commands('bizproc.event.send')).toHaveLength(1);
  return { token, answer: answers[0]!, log: h.portal.robotLog.filter((l) => l.token === token) };
}

const robotEntries = (token: string) =>
  raw<{ id: number; amount: number; reason: string; caused_by: string; idempotency_key: string }>(
    'SELECT id, amount, reason, caused_by, idempotency_key FROM ledger_entries WHERE portal_id = $1 AND caused_by = $2 ORDER BY id',
    [pid, `robot:${robotTokenHash(token)}`],
  );

let anna: { contact: number; code: string };

beforeAll(async () => {
  h = await createHarness({ clock });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  pid = await installApp(h);
  anna = await enrolledReferrer(h, pid, 'Анна');
  await referredWin(h, anna.code, 100000, 'Борис');
});

afterAll(async () => {
  await h?.close();
});

const balanceOf = async (entity: 'contact' | 'lead', id: number) => {
  const m = await h.store.members.findByEntity(pid, entity, id);
  return m ? ((await h.store.ledger.balances(pid, [m.id], clock.now())).get(m.id)?.available ?? 0) : 0;
};

describe('sarafan_accrue', () => {
  it('credits the deal’s client a fixed amount once, and answers the return values', async () => {
    const before = await balanceOf('contact', anna.contact);
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 2000 });
    const { token, answer, log } = await run('sarafan_accrue', `DEAL_${deal}`, { amount: '150.50', comment: 'Оплата' });
    const entries = await robotEntries(token);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ amount: 150_50, reason: 'adjustment' });
    expect(await balanceOf('contact', anna.contact)).toBe(before + 150_50);
    const entryId = (await raw<{ id: number }>('SELECT id FROM ledger_entries WHERE portal_id = $1 AND caused_by = $2', [pid, `robot:${robotTokenHash(token)}`]))[0]!.id;
    expect(answer.values).toEqual({ accrued: '150.50', balance: ((before + 150_50) / 100).toFixed(2), entry_id: String(entryId), ok: 'Y', error: '' });
    expect(log).toHaveLength(1);
    expect(log[0]!.message).toContain('150.50');
  });

  it('credits a percent of the deal’s amount', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 3000 });
    const { token, answer } = await run('sarafan_accrue', `DEAL_${deal}`, { percent: '5' });
    expect(answer.values).toMatchObject({ accrued: '150.00', ok: 'Y', error: '' });
    expect((await robotEntries(token)).map((e) => e.amount)).toEqual([150_00]);
  });

  it('a percent of a deal in another currency is taken of its amount converted with the portal’s rates', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 30, CURRENCY_ID: 'USD' });
    const { token, answer } = await run('sarafan_accrue', `DEAL_${deal}`, { percent: '5' });
    // 30 USD × 90 = 2 700 RUB (crm.currency.list: USD AMOUNT 90 per 1); 5 % = 135.00.
    expect(answer.values).toMatchObject({ accrued: '135.00', ok: 'Y', error: '' });
    expect((await robotEntries(token)).map((e) => e.amount)).toEqual([135_00]);
  });

  it('a percent of an amount in a currency the portal has no rate for is answered ok = N', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 3000, CURRENCY_ID: 'KZT' });
    const { token, answer } = await run('sarafan_accrue', `DEAL_${deal}`, { percent: '5' });
    expect(answer.values).toMatchObject({ accrued: '0.00', ok: 'N', error: 'Нет курса валюты документа к валюте программы в настройках портала' });
    expect(await robotEntries(token)).toEqual([]);
  });

  it('credits a percent of a lead’s amount, read through the CRM', async () => {
    const lead = h.portal.add('lead', { TITLE: 'Лид с суммой', OPPORTUNITY: '2000.00', CURRENCY_ID: 'RUB' });
    const { token, answer } = await run('sarafan_accrue', `LEAD_${lead}`, { percent: '5' });
    const entries = await robotEntries(token);
    expect(entries).toEqual([expect.objectContaining({ amount: 100_00, reason: 'adjustment' })]);
    expect(answer.values).toMatchObject({ accrued: '100.00', balance: '100.00', ok: 'Y', error: '' });
    expect(await balanceOf('lead', lead)).toBe(100_00);
    // The lead is read with its amount (named in the list's select), in the program's currency: no rates are read.
    const read = h.portal.commands('crm.lead.list');
    expect(read[0]!.params).toMatchObject({ filter: { '@ID': [String(lead)] } });
    expect(read[0]!.params.select).toEqual(expect.arrayContaining(['OPPORTUNITY', 'CURRENCY_ID']));
    expect(h.portal.commands('crm.currency.list')).toEqual([]);
    expect(h.portal.commands('bizproc.event.send').map((c) => c.params)).toEqual([
      { EVENT_TOKEN: token, RETURN_VALUES: { accrued: '100.00', balance: '100.00', entry_id: String(entries[0]!.id), ok: 'Y', error: '' }, LOG_MESSAGE: `Sarafan (sarafan_accrue): +100.00 → lead ${lead}` },
    ]);
  });

  it('a lead in another currency is converted like a deal; a lead without an amount is answered ok = N', async () => {
    const usd = h.portal.add('lead', { TITLE: 'Лид в долларах', OPPORTUNITY: '100', CURRENCY_ID: 'USD' });
    const converted = await run('sarafan_accrue', `LEAD_${usd}`, { percent: '2.5' });
    // 100 USD × 90 = 9 000 RUB; 2.5 % = 225.00.
    expect(converted.answer.values).toMatchObject({ accrued: '225.00', ok: 'Y' });
    expect((await robotEntries(converted.token)).map((e) => e.amount)).toEqual([225_00]);

    const empty = h.portal.add('lead', { TITLE: 'Лид без суммы' });
    const refused = await run('sarafan_accrue', `LEAD_${empty}`, { percent: '5' });
    expect(refused.answer.values).toEqual({ accrued: '0.00', balance: '', entry_id: '', ok: 'N', error: 'У документа не указана сумма' });
    expect(await robotEntries(refused.token)).toEqual([]);
    expect(await balanceOf('lead', empty)).toBe(0);
  });

  it('an invalid amount is answered ok = N naming the property, and credits nothing', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 3000 });
    const { token, answer, log } = await run('sarafan_accrue', `DEAL_${deal}`, { amount: 'abc' });
    expect(answer.values).toEqual({ accrued: '0.00', balance: '', entry_id: '', ok: 'N', error: 'Неверное значение свойства «amount»' });
    expect(log[0]!.message).toContain('не выполнено');
    expect(await robotEntries(token)).toEqual([]);
  });

  it('a deal without a client is answered ok = N', async () => {
    const deal = h.portal.add('deal', { STAGE_ID: 'NEW', OPPORTUNITY: 3000 });
    const { token, answer } = await run('sarafan_accrue', `DEAL_${deal}`, { amount: '10' });
    expect(answer.values).toMatchObject({ ok: 'N', error: 'У документа нет клиента (контакта или лида)' });
    expect(await robotEntries(token)).toEqual([]);
  });

  it('a deal the portal does not have is answered ok = N', async () => {
    const { answer } = await run('sarafan_accrue', 'DEAL_999999', { amount: '10' });
    expect(answer.values).toMatchObject({ ok: 'N', error: 'Документ не найден в CRM' });
  });

  it('a document that is not a deal or a lead is answered ok = N without reading the CRM', async () => {
    const contact = h.portal.add('contact', { NAME: 'Вера' });
    const { token, answer } = await run('sarafan_accrue', `CONTACT_${contact}`, { amount: '10' });
    expect(answer.values).toMatchObject({ ok: 'N', error: 'Роботы Sarafan работают только в сделках и лидах' });
    expect(h.portal.commands().map((c) => c.method)).toEqual(['bizproc.activity.log', 'bizproc.event.send']);
    expect(await robotEntries(token)).toEqual([]);
  });

  it('a repeated event token acts and answers once; the repeat is acknowledged with the stored answer', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 3000 });
    const { token, answer } = await run('sarafan_accrue', `DEAL_${deal}`, { amount: '7' });
    const jobs = await count('SELECT count(*) AS n FROM jobs WHERE portal_id = $1 AND kind = $2', [pid, 'robot.run']);
    h.portal.resetCalls();
    const again = robotPayload('sarafan_accrue', `DEAL_${deal}`, { amount: '7' }, { token, wait: false });
    const ack = await post('sarafan_accrue', again.body);
    expect(ack.status).toBe(200);
    expect(ack.body).toEqual({ status: 'repeated', answer: answer.values });
    expect(await h.worker.drain()).toBe(0);
    expect(h.portal.calls).toEqual([]);
    expect(await count('SELECT count(*) AS n FROM jobs WHERE portal_id = $1 AND kind = $2', [pid, 'robot.run'])).toBe(jobs);
    expect((await robotEntries(token)).map((e) => e.amount)).toEqual([7_00]);
  });
});

describe('answering', () => {
  it('an answer the portal failed to take is sent again, the same, without acting twice', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 3000 });
    const { token, body } = robotPayload('sarafan_accrue', `DEAL_${deal}`, { amount: '12' });
    h.portal.failCommands('bizproc.event.send', 1);
    expect((await post('sarafan_accrue', body)).status).toBe(200);
    await h.worker.drain();
    expect(h.portal.robotAnswers.filter((a) => a.token === token)).toEqual([]);
    expect((await robotEntries(token)).map((e) => e.amount)).toEqual([12_00]);
    const stored = await h.store.robotCalls.get(pid, robotTokenHash(token));
    expect(stored).toMatchObject({ answeredAt: null, answer: { values: { accrued: '12.00', ok: 'Y' } } });

    offset += 3_600_000;
    await h.worker.drain();
    const answers = h.portal.robotAnswers.filter((a) => a.token === token);
    expect(answers.map((a) => a.values)).toEqual([stored!.answer!.values]);
    expect((await robotEntries(token)).map((e) => e.amount)).toEqual([12_00]);
    expect((await h.store.robotCalls.get(pid, robotTokenHash(token)))?.answeredAt).not.toBeNull();
  });

  it('a call whose job runs out of attempts is still answered, once: ok = N, try again', async () => {
    // Two attempts: the portal fails to give the deal both times, so the call cannot be decided.
    const worker = createWorker(h.deps, { workerId: 'robots-last-attempt', maxAttempts: 2 });
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 3000 });
    const { token, body } = robotPayload('sarafan_accrue', `DEAL_${deal}`, { amount: '40' });
    h.portal.failCommands('crm.deal.list', 2);
    expect((await post('sarafan_accrue', body)).status).toBe(200);
    h.portal.resetCalls();
    expect(await worker.drain()).toBe(1);
    expect(h.portal.commands('bizproc.event.send')).toEqual([]);
    expect(await h.store.jobs.depth(pid)).toMatchObject({ queued: 1, dead: 0 });

    offset += 3_600_000;
    expect(await worker.drain()).toBe(1);
    const answer = { accrued: '0.00', balance: '', entry_id: '', ok: 'N', error: 'Sarafan не смог обработать вызов, повторите попытку' };
    expect(h.portal.commands('bizproc.event.send').map((c) => c.params)).toEqual([
      { EVENT_TOKEN: token, RETURN_VALUES: answer, LOG_MESSAGE: 'Sarafan (sarafan_accrue): не выполнено — Sarafan не смог обработать вызов, повторите попытку' },
    ]);
    expect(h.portal.robotAnswers.filter((a) => a.token === token).map((a) => a.values)).toEqual([answer]);
    expect(await robotEntries(token)).toEqual([]);
    expect(await h.store.robotCalls.get(pid, robotTokenHash(token))).toMatchObject({ answer: { values: answer }, answeredAt: expect.any(Date) });
    expect(await h.store.jobs.depth(pid)).toMatchObject({ queued: 0, running: 0, dead: 0 });
    expect(h.logs.some((l) => l.includes('robot.gave_up'))).toBe(true);

    // Nothing is left to run, and a repeat of the call gets the same answer without a second send.
    offset += 3_600_000;
    expect(await worker.drain()).toBe(0);
    const again = await post('sarafan_accrue', robotPayload('sarafan_accrue', `DEAL_${deal}`, { amount: '40' }, { token, wait: false }).body);
    expect(again.body).toEqual({ status: 'repeated', answer });
    expect(h.portal.commands('bizproc.event.send')).toHaveLength(1);
  });

  it('a token the portal no longer waits on (ACCESS_DENIED) ends the call without a retry', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 3000 });
    const { token, body } = robotPayload('sarafan_status', `DEAL_${deal}`, {}, { wait: false });
    expect((await post('sarafan_status', body)).status).toBe(200);
    await h.worker.drain();
    expect(h.portal.robotAnswers.filter((a) => a.token === token)).toEqual([]);
    expect((await h.store.robotCalls.get(pid, robotTokenHash(token)))?.answeredAt).not.toBeNull();
    expect(await h.store.jobs.depth(pid)).toMatchObject({ queued: 0, running: 0, dead: 0 });
  });
});

describe('sarafan_redeem', () => {
  it('an empty amount redeems the most allowed on the deal', async () => {
    const before = await balanceOf('contact', anna.contact);
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 1000 });
    const { answer } = await run('sarafan_redeem', `DEAL_${deal}`, { amount: '' });
    const entries = await h.store.ledger.forDeal(pid, deal);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ reason: 'redemption' });
    const redeemed = -entries[0]!.amount;
    expect(redeemed).toBeGreaterThan(0);
    expect(answer.values).toEqual({ redeemed: (redeemed / 100).toFixed(2), balance: ((before - redeemed) / 100).toFixed(2), ok: 'Y', error: '' });
  });

  it('more than the client has is answered ok = N, and nothing is written off', async () => {
    const vera = h.portal.add('contact', { NAME: 'Вера' });
    const deal = h.portal.add('deal', { CONTACT_ID: vera, STAGE_ID: 'NEW', OPPORTUNITY: 5000 });
    const { answer } = await run('sarafan_redeem', `DEAL_${deal}`, { amount: '100' });
    expect(answer.values).toEqual({ redeemed: '0.00', balance: '', ok: 'N', error: 'Недостаточно бонусов на балансе клиента' });
    expect(await h.store.ledger.forDeal(pid, deal)).toEqual([]);
  });

  it('on a lead is answered ok = N: redemption needs a deal', async () => {
    const lead = h.portal.add('lead', { TITLE: 'Лид' });
    const { answer } = await run('sarafan_redeem', `LEAD_${lead}`, { amount: '1' });
    expect(answer.values).toMatchObject({ ok: 'N', error: 'Этот робот работает только в сделках' });
  });
});

describe('sarafan_status, sarafan_enroll, sarafan_promo', () => {
  it('status returns the client’s code, link, balance and referrals', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 10 });
    const { answer } = await run('sarafan_status', `DEAL_${deal}`);
    const balance = await balanceOf('contact', anna.contact);
    expect(answer.values).toMatchObject({ code: anna.code, balance: (balance / 100).toFixed(2), pending: '0.00', referrals: '1', ok: 'Y', error: '' });
    expect(answer.values.link).toContain(anna.code);
  });

  it('enroll gives a lead a code and link, once', async () => {
    const lead = h.portal.add('lead', { TITLE: 'Новый лид' });
    const { answer } = await run('sarafan_enroll', `LEAD_${lead}`);
    const member = await h.store.members.findByEntity(pid, 'lead', lead);
    expect(member?.code).toBeTruthy();
    expect(answer.values).toMatchObject({ code: member!.code, ok: 'Y', error: '' });
    expect(answer.values.link).toContain(member!.code!);
    const second = await run('sarafan_enroll', `LEAD_${lead}`);
    expect(second.answer.values.code).toBe(member!.code);
  });

  it('promo credits a code typed by the client; an unknown code is answered ok = N', async () => {
    const created = await request(h.app)
      .post('/api/promo-campaigns')
      .set('Authorization', `Bearer ${ADMIN}`)
      .set('X-Sarafan-Portal', h.portal.memberId)
      .send({ name: 'Роботы', count: 1, value: 250 });
    expect(created.status).toBe(201);
    const code = (await raw<{ code: string }>('SELECT code FROM promo_codes WHERE portal_id = $1 AND campaign_id = $2', [pid, created.body.id]))[0]!.code;
    const lead = h.portal.add('lead', { TITLE: 'Промо' });
    const { answer } = await run('sarafan_promo', `LEAD_${lead}`, { code });
    expect(answer.values).toEqual({ accrued: '250.00', balance: '250.00', ok: 'Y', error: '' });
    expect(await balanceOf('lead', lead)).toBe(250_00);
    const unknown = await run('sarafan_promo', `LEAD_${lead}`, { code: 'ZZZZZZZZ' });
    expect(unknown.answer.values).toEqual({ accrued: '0.00', balance: '', ok: 'N', error: 'Промокод не найден' });
    expect(await balanceOf('lead', lead)).toBe(250_00);
  });
});

describe('forged and malformed calls', () => {
  it('a wrong or missing application token is 401: nothing stored or queued, no outbound call', async () => {
    const deal = h.portal.add('deal', { CONTACT_ID: anna.contact, STAGE_ID: 'NEW', OPPORTUNITY: 10 });
    const calls = await count('SELECT count(*) AS n FROM robot_calls WHERE portal_id = $1', [pid]);
    h.portal.resetCalls();
    for (const applicationToken of ['forged-token', null]) {
      const { body } = robotPayload('sarafan_accrue', `DEAL_${deal}`, { amount: '1000' }, { applicationToken });
      const res = await post('sarafan_accrue', body);
      expect(res.status).toBe(401);
    }
    expect(await h.worker.drain()).toBe(0);
    expect(h.portal.calls).toEqual([]);
    expect(await count('SELECT count(*) AS n FROM robot_calls WHERE portal_id = $1', [pid])).toBe(calls);
  });

  it('an unknown robot code or a malformed call is 400 naming the field, and stores nothing', async () => {
    const calls = await count('SELECT count(*) AS n FROM robot_calls WHERE portal_id = $1', [pid]);
    const unknown = await post('sarafan_teleport', robotPayload('sarafan_teleport', 'DEAL_1').body);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details).toEqual([expect.objectContaining({ path: 'code' })]);
    const noToken = robotPayload('sarafan_status', 'DEAL_1').body.replace(/&event_token=[^&]*/, '');
    const missing = await post('sarafan_status', noToken);
    expect(missing.status).toBe(400);
    expect(missing.body.error.details.map((d: { path: string }) => d.path)).toEqual(['event_token']);
    const mismatch = await post('sarafan_status', robotPayload('sarafan_redeem', 'DEAL_1').body);
    expect(mismatch.status).toBe(400);
    expect(await count('SELECT count(*) AS n FROM robot_calls WHERE portal_id = $1', [pid])).toBe(calls);
    expect(await h.worker.drain()).toBe(0);
  });
});
