/**
 * Hold maturation (SPEC 6) with an injected clock, msw playing the portal: a program with a
 * 14-day hold credits the referrer as PENDING; once the clock is past the hold, a `holds.mature`
 * tick queues the referrer's contact and the worker moves the amount from PENDING to BALANCE in
 * the CRM. Ticks with nothing maturing queue nothing and cost no REST request.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScheduler } from '../../server/jobs/scheduler.js';
import { createWorker, type Worker } from '../../server/jobs/worker.js';
import type { Deps } from '../../src/handlers/ports.js';
import { F } from '../../src/rules/crm-fields.js';
import { DEFAULT_PROGRAM } from '../../src/rules/program.js';
import { crmEvent, installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { FORM, sendEvent } from '../support/scenario.js';

const DAY = 24 * 3600_000;
let h: Harness;
let pid: number;
/** How far the injected clock is ahead of the wall clock (events are queued at wall-clock time). */
let ahead = 0;
let deps: Deps;
let worker: Worker;

beforeAll(async () => {
  h = await createHarness();
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  deps = { ...h.deps, clock: { now: () => new Date(Date.now() + ahead) } };
  worker = createWorker(deps, { workerId: 'holds' });
  await worker.drain();
  await h.store.programs.create(pid, { ...DEFAULT_PROGRAM, referral: { ...DEFAULT_PROGRAM.referral, holdDays: 14 } }, null, new Date());
});

afterAll(async () => {
  await h?.close();
});

describe('hold maturation', () => {
  let referrer: number;

  it('a held reward shows as PENDING', async () => {
    referrer = h.portal.add('contact', { NAME: 'Анна' });
    const first = h.portal.add('deal', { CONTACT_ID: referrer, STAGE_ID: 'WON', OPPORTUNITY: 10 });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', first));
    await worker.drain();
    const code = String(h.portal.get('contact', referrer)[F.CODE]);
    const referee = h.portal.add('contact', { NAME: 'Борис', [F.REF_CODE]: code });
    const deal = h.portal.add('deal', { CONTACT_ID: referee, STAGE_ID: 'WON', OPPORTUNITY: 100000 });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMCONTACTADD', referee));
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', deal));
    await worker.drain();
    const [credit] = await h.store.ledger.forDeal(pid, deal);
    expect(credit).toMatchObject({ amount: 10000_00 });
    expect(credit!.availableAt.getTime() - credit!.createdAt.getTime()).toBe(14 * DAY);
    expect(Number(h.portal.get('contact', referrer)[F.PENDING])).toBe(10000);
    expect(Number(h.portal.get('contact', referrer)[F.BALANCE] ?? 0)).toBe(0);
  });

  it('a tick before the hold ends queues nothing and calls nothing', async () => {
    ahead = DAY;
    h.portal.resetCalls();
    expect(await createScheduler(deps, {}).tick('holds.mature', deps.clock.now())).toEqual({ claimed: true, enqueued: 1 });
    expect(await worker.drain()).toBe(1);
    expect(h.portal.calls).toEqual([]);
    expect((await h.store.watermarks.get(pid, ['holds.mature'])).get('holds.mature')?.mark.getTime()).toBeGreaterThan(Date.now());
  });

  it('past the hold, a tick moves the amount from PENDING to BALANCE in the CRM', async () => {
    ahead = 15 * DAY;
    h.portal.resetCalls();
    expect(await createScheduler(deps, {}).tick('holds.mature', deps.clock.now())).toEqual({ claimed: true, enqueued: 1 });
    // The holds job, then the contact it queued.
    expect(await worker.drain()).toBe(2);
    expect(Number(h.portal.get('contact', referrer)[F.BALANCE])).toBe(10000);
    expect(Number(h.portal.get('contact', referrer)[F.PENDING])).toBe(0);
    const writes = h.portal.commands().filter((c) => c.method.endsWith('.update'));
    expect(writes.map((w) => [w.method, w.params.id, w.params.fields])).toEqual([['crm.contact.update', String(referrer), { [F.BALANCE]: '10000', [F.PENDING]: '0' }]]);
  });

  it('the next tick finds nothing more to mature', async () => {
    ahead = 16 * DAY;
    h.portal.resetCalls();
    await createScheduler(deps, {}).tick('holds.mature', deps.clock.now());
    expect(await worker.drain()).toBe(1);
    expect(h.portal.calls).toEqual([]);
  });
});
