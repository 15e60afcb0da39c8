/**
 * Exactly-once under concurrency, on a real PostgreSQL server (PGlite serializes everything,
 * so only a server shows races): the same deal processed by several workers at once credits
 * once and reverses once; two won deals of one client processed at once pay the first-won-deal
 * reward once. Fails (never skips) when the server is unreachable, unless
 * SARAFAN_SKIP_POSTGRES=1 says to skip.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processCrmChanges } from '../../src/handlers/process-crm-changes.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { enrolledReferrer } from '../support/scenario.js';
import { createDatabase, dropDatabase, serverUrl, withDatabase } from '../support/postgres.js';

const skip = process.env.SARAFAN_SKIP_POSTGRES === '1';
const FORM = 'application/x-www-form-urlencoded';
const WORKERS = 8;

describe.skipIf(skip)(`exactly once under concurrent workers (PostgreSQL)${skip ? ' — skipped: SARAFAN_SKIP_POSTGRES=1 is set' : ''}`, () => {
  let h: Harness;
  let database: string;
  let pid: number;

  beforeAll(async () => {
    database = await createDatabase();
    h = await createHarness({ databaseUrl: withDatabase(serverUrl, database) });
    const { query, body } = installRequest(h.portal);
    expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
    pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
  });

  afterAll(async () => {
    await h?.close();
    if (database) await dropDatabase(database);
  });

  const parallel = (dealIds: number[]) =>
    Promise.all(Array.from({ length: WORKERS }, (_, i) => processCrmChanges(h.deps, pid, [{ entity: 'deal', id: dealIds[i % dealIds.length]!, deleted: false }])));

  it('the same won deal processed by 8 workers at once credits once; lost, reverses once', async () => {
    const { code } = await enrolledReferrer(h, pid);
    const referee = h.portal.add('contact', { NAME: 'Клиент', UF_CRM_SARAFAN_REF_CODE: code });
    const deal = h.portal.add('deal', { CONTACT_ID: referee, STAGE_ID: 'WON', OPPORTUNITY: 5000 });
    const outcomes = await parallel([deal]);
    expect(outcomes.flat().every((o) => o.ok)).toBe(true);
    let entries = await h.store.ledger.forDeal(pid, deal);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([['credit', 500_00]]);

    h.portal.update('deal', deal, { STAGE_ID: 'LOSE' });
    await parallel([deal]);
    entries = await h.store.ledger.forDeal(pid, deal);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ['credit', 500_00],
      ['reversal', -500_00],
    ]);
  });

  it('two won deals of one client processed at once pay the first-won-deal reward once', async () => {
    const { code } = await enrolledReferrer(h, pid);
    const referee = h.portal.add('contact', { NAME: 'Клиент 2', UF_CRM_SARAFAN_REF_CODE: code });
    const a = h.portal.add('deal', { CONTACT_ID: referee, STAGE_ID: 'WON', OPPORTUNITY: 1000 });
    const b = h.portal.add('deal', { CONTACT_ID: referee, STAGE_ID: 'WON', OPPORTUNITY: 3000 });
    await parallel([a, b]);
    const net = async (id: number) => (await h.store.ledger.forDeal(pid, id)).reduce((s, e) => s + e.amount, 0);
    const paid = [await net(a), await net(b)];
    expect(paid.filter((x) => x !== 0)).toHaveLength(1);
    expect([100_00, 300_00]).toContain(paid[0]! + paid[1]!);
  });
});
