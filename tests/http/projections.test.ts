/**
 * The CRM fields follow the ledger (SPEC 4.1, 6): REFERRALS counts the referees whose won deal
 * pays now, and a projection write that fails — one command refused, or the portal down right
 * after the ledger committed, as a crash would leave it — is retried by the durable crm.project
 * job until the CRM equals the ledger. The clock is injected: the retry is reached by moving it.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import { PROJECTION_GRACE_MS } from '../../src/handlers/process-crm-changes.js';
import { createHarness, type Harness } from '../support/harness.js';
import { FORM, enrolledReferrer, referredWin, sendEvent } from '../support/scenario.js';

let h: Harness;
let pid: number;
let offset = 0;
const clock = { now: () => new Date(Date.UTC(2026, 11, 2, 10, 0, 0) + offset) };
const send = (body: string) => sendEvent(h, body);

beforeAll(async () => {
  h = await createHarness({ clock });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
});

afterAll(async () => {
  await h.close();
});

describe('UF_CRM_SARAFAN_REFERRALS', () => {
  it('counts referees whose won deal pays the referrer now, and follows a reversal', async () => {
    const p = h.portal;
    const { contact: r, code } = await enrolledReferrer(h, pid);
    const { deal: d1 } = await referredWin(h, code, 1000, 'Клиент А');
    expect(p.get('contact', r).UF_CRM_SARAFAN_REFERRALS).toBe('1');
    await referredWin(h, code, 2000, 'Клиент Б');
    expect(p.get('contact', r)).toMatchObject({ UF_CRM_SARAFAN_REFERRALS: '2', UF_CRM_SARAFAN_BALANCE: '300' });

    // A's deal is lost: its reward is reversed, and A no longer counts.
    p.update('deal', d1, { STAGE_ID: 'LOSE' });
    await send(crmEvent(p, 'ONCRMDEALUPDATE', d1));
    await h.worker.drain();
    expect(p.get('contact', r)).toMatchObject({ UF_CRM_SARAFAN_REFERRALS: '1', UF_CRM_SARAFAN_BALANCE: '200' });
    expect(p.get('deal', d1).UF_CRM_SARAFAN_REWARD).toBe('0');
    const member = await h.store.members.findByEntity(pid, 'contact', r);
    expect((await h.store.referrals.qualifiedCount(pid, [member!.id])).get(member!.id)).toBe(1);
    // The read API says the same.
    expect((await h.store.referrals.countByReferrer(pid, [member!.id])).get(member!.id)).toBe(2); // both referrals stay recorded
  });
});

describe('a projection write that fails', () => {
  it('is retried by the durable job until the CRM equals the ledger', async () => {
    const p = h.portal;
    const { contact: r, code } = await enrolledReferrer(h, pid, 'Реферер 2');
    const before = p.get('contact', r).UF_CRM_SARAFAN_BALANCE;
    // Every crm.contact.update of the next run is refused by the portal.
    p.failCommands('crm.contact.update', 10);
    const { contact: client, deal } = await referredWin(h, code, 5000, 'Клиент В');
    const member = await h.store.members.findByEntity(pid, 'contact', r);
    expect((await h.store.ledger.balances(pid, [member!.id], clock.now())).get(member!.id)).toEqual({ available: 500_00, pending: 0 });
    expect(p.get('contact', r).UF_CRM_SARAFAN_BALANCE).toBe(before); // not written yet
    expect(p.get('deal', deal).UF_CRM_SARAFAN_REWARD).toBe('500'); // the deal's write went through
    expect((await h.store.jobs.depth(pid)).queued).toBe(1); // the crm.project job owed

    // Nothing happens before the job is due; then it writes what is missing, once.
    p.failCommands('crm.contact.update', 0);
    expect(await h.worker.drain()).toBe(0);
    offset += PROJECTION_GRACE_MS;
    p.resetCalls();
    expect(await h.worker.drain()).toBe(1);
    expect(p.get('contact', r).UF_CRM_SARAFAN_BALANCE).toBe('500');
    // The referrer's balance and the new client's code and referrer: both writes had failed.
    expect(p.commands('crm.contact.update').map((c) => Number(c.params.id)).sort((x, y) => x - y)).toEqual([r, client].sort((x, y) => x - y));
    expect(p.get('contact', client)).toMatchObject({ UF_CRM_SARAFAN_REFERRER: `C_${r}` });
    expect(p.commands('crm.deal.update')).toEqual([]);
    expect((await h.store.jobs.depth(pid)).queued).toBe(0);
  });

  it('survives the portal being down right after the ledger committed (as a crash would leave it)', async () => {
    const p = h.portal;
    const { contact: r, code } = await enrolledReferrer(h, pid, 'Реферер 3');
    const a = p.add('contact', { NAME: 'Клиент Г', UF_CRM_SARAFAN_REF_CODE: code });
    await send(crmEvent(p, 'ONCRMCONTACTADD', a));
    await h.worker.drain();
    const deal = p.add('deal', { CONTACT_ID: a, STAGE_ID: 'WON', OPPORTUNITY: 3000 });
    await send(crmEvent(p, 'ONCRMDEALUPDATE', deal));
    // The read goes through; the write batch and its retry find the portal down.
    p.failWriteBatches(2);
    // The change, then the crm.feedback job its credit queued (comments are not writes: they go through).
    expect(await h.worker.drain()).toBe(2);
    const member = await h.store.members.findByEntity(pid, 'contact', r);
    expect((await h.store.ledger.forDeal(pid, deal)).map((e) => [e.memberId, e.amount])).toEqual([[member!.id, 300_00]]);
    expect(p.get('deal', deal).UF_CRM_SARAFAN_REWARD ?? '').not.toBe('300');
    expect(h.logs.some((l) => l.includes('crm.projections_deferred'))).toBe(true);

    offset += PROJECTION_GRACE_MS;
    expect(await h.worker.drain()).toBe(1);
    expect(p.get('deal', deal)).toMatchObject({ UF_CRM_SARAFAN_REWARD: '300', UF_CRM_SARAFAN_REFERRER: `C_${r}` });
    expect(p.get('contact', r)).toMatchObject({ UF_CRM_SARAFAN_BALANCE: '300', UF_CRM_SARAFAN_REFERRALS: '1' });
    expect(p.get('contact', a).UF_CRM_SARAFAN_CODE).toMatch(/^[A-Z0-9]{6,8}$/);
    expect((await h.store.jobs.depth(pid)).queued).toBe(0);
  });
});
