/**
 * Deals that change after they were priced: moved to another contact, and deals Sarafan has
 * nothing to do with.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { createHarness, type Harness } from '../support/harness.js';
import { FORM, enrolledReferrer, referredWin, sendEvent } from '../support/scenario.js';

let h: Harness;
let pid: number;
const send = (body: string) => sendEvent(h, body);
const net = async (dealId: number) => (await h.store.ledger.forDeal(pid, dealId)).reduce((s, e) => s + e.amount, 0);

beforeAll(async () => {
  h = await createHarness();
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
});

afterAll(async () => {
  await h.close();
});

describe('a won deal moved to another contact', () => {
  it('reverses the old referrer’s reward, does not attribute the new contact, and re-qualifies the old client', async () => {
    const p = h.portal;
    const { contact: r, code } = await enrolledReferrer(h, pid);
    const { contact: a, deal: d1 } = await referredWin(h, code, 1000, 'Клиент А');
    const d2 = p.add('deal', { CONTACT_ID: a, STAGE_ID: 'WON', OPPORTUNITY: 2000 });
    await send(crmEvent(p, 'ONCRMDEALUPDATE', d2));
    await h.worker.drain();
    expect([await net(d1), await net(d2)]).toEqual([100_00, 0]);
    expect(p.get('deal', d1).UF_CRM_SARAFAN_REFERRER).toBe(`C_${r}`);

    // A manager moves d1 to contact B; our REFERRER value is still on the deal.
    const b = p.add('contact', { NAME: 'Клиент Б' });
    p.update('deal', d1, { CONTACT_ID: b });
    await send(crmEvent(p, 'ONCRMDEALUPDATE', d1));
    await h.worker.drain();

    const bMember = await h.store.members.findByEntity(pid, 'contact', b);
    expect(bMember).not.toBeNull(); // B won a deal: enrolled …
    expect(await h.store.referrals.activeFor(pid, bMember!.id)).toBeNull(); // … but not referred by R
    expect(await net(d1)).toBe(0); // R's reward on d1 reversed
    expect(await net(d2)).toBe(200_00); // d2 is now A's first won deal
    const rMember = await h.store.members.findByEntity(pid, 'contact', r);
    const bal = (await h.store.ledger.balances(pid, [rMember!.id], new Date())).get(rMember!.id);
    expect(bal?.available).toBe(200_00);
  });
});

describe('a won deal whose contact is removed', () => {
  it('has no referee any more: the referrer’s reward is reversed', async () => {
    const p = h.portal;
    const { code } = await enrolledReferrer(h, pid, 'Р2');
    const { deal: d } = await referredWin(h, code, 500, 'К2');
    expect(await net(d)).toBe(50_00);
    p.update('deal', d, { CONTACT_ID: '0' });
    await send(crmEvent(p, 'ONCRMDEALUPDATE', d));
    await h.worker.drain();
    expect(await net(d)).toBe(0);
    expect((await h.store.deals.get(pid, d))?.clientMemberId).toBeNull();
  });
});

describe('deals Sarafan has nothing to do with', () => {
  it('are read but never written to', async () => {
    const p = h.portal;
    const plain = p.add('deal', { TITLE: 'Без клиента', STAGE_ID: 'NEW', OPPORTUNITY: 10 });
    const lost = p.add('deal', { TITLE: 'Проигран', STAGE_ID: 'LOSE', OPPORTUNITY: 10, CONTACT_ID: p.add('contact', { NAME: 'Икс' }) });
    p.resetCalls();
    await send(crmEvent(p, 'ONCRMDEALADD', plain));
    await send(crmEvent(p, 'ONCRMDEALUPDATE', lost));
    await h.worker.drain();
    expect(p.commands().filter((c) => c.method.endsWith('.update'))).toEqual([]);
    expect(p.get('deal', plain).UF_CRM_SARAFAN_REWARD).toBeUndefined();
  });
});

describe('a change the loop cannot process', () => {
  it('does not hold back the rest of its batch: the others are credited, it alone is retried', async () => {
    const p = h.portal;
    const { code } = await enrolledReferrer(h, pid, 'Р3');
    // A deal Sarafan priced with a program version that no longer exists (a damaged store).
    const poisoned = p.add('deal', { TITLE: 'Испорчена', STAGE_ID: 'WON', OPPORTUNITY: 10, CONTACT_ID: p.add('contact', { NAME: 'Игрек' }) });
    await h.store.deals.upsertMany([{
      portalId: pid, dealId: poisoned, clientMemberId: null, categoryId: 0, stageId: 'WON', stageSemantic: 'S', amount: 1000, currency: 'RUB',
      won: true, deleted: false, firstWonAt: new Date(), programVersion: 999, referralId: null, updatedAt: new Date(),
    }]);
    const client = p.add('contact', { NAME: 'К3', UF_CRM_SARAFAN_REF_CODE: code });
    const good = p.add('deal', { CONTACT_ID: client, STAGE_ID: 'WON', OPPORTUNITY: 700 });
    await send(crmEvent(p, 'ONCRMCONTACTADD', client));
    await send(crmEvent(p, 'ONCRMDEALUPDATE', poisoned));
    await send(crmEvent(p, 'ONCRMDEALUPDATE', good));
    await h.worker.drain();
    expect(await net(good)).toBe(70_00);
    const rows = await (h.store as SqlStore).rawQuery<{ key: string; status: string; attempts: number; last_error: string }>(
      "SELECT key, status, attempts, last_error FROM jobs WHERE portal_id = $1 AND kind = 'crm.change' AND status <> 'done'",
      [pid],
    );
    expect(rows).toEqual([{ key: `deal:${poisoned}`, status: 'queued', attempts: 1, last_error: expect.stringContaining('version 999') }]);
  });
});
