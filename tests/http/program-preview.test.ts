/**
 * POST /api/program/preview through createApp: the README's four worked examples read from the
 * README itself and priced by the route (so the documented numbers are the route's), the cap's
 * part, statuses, validation, admin-only access, and that a preview stores and sends nothing.
 */
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programPreviewAnswerSchema } from '../../src/contract/admin.js';
import { DEFAULT_PROGRAM } from '../../src/rules/program.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';

let h: Harness;
let pid: number;
const ADMIN = 'user-token-admin-0001';
const MANAGER = 'user-token-manager-0002';
const FORM = 'application/x-www-form-urlencoded';
const NOW = new Date(Date.UTC(2026, 11, 3, 9, 0, 0));
const DAY_MS = 86_400_000;

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const EXAMPLES = new Map(
  [...README.matchAll(/<!-- program-example:(\S+) depth=(\d+) -->\s*```json\n([\s\S]*?)```/g)].map((m) => [
    m[1]!,
    { depth: Number(m[2]), program: JSON.parse(m[3]!) as Record<string, unknown> },
  ]),
);

function preview(body: unknown, token = ADMIN) {
  return request(h.app).post('/api/program/preview').set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', h.portal.memberId).send(body as object);
}

const deal = (depth: number, amount = 100_000) => ({ amount, currency: 'RUB', depth });

beforeAll(async () => {
  h = await createHarness({ clock: { now: () => new Date(NOW) } });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  pid = (await h.store.installations.findByMemberId(h.portal.memberId))!.id;
});

afterAll(async () => {
  await h.close();
});

describe('the README examples, priced by the preview route', () => {
  it('finds the four examples in the README', () => {
    expect([...EXAMPLES.keys()]).toEqual(['classic', 'two-sided', 'network', 'tiers']);
  });

  const available = NOW.toISOString();
  const cases: [string, object[], number][] = [
    ['classic', [{ beneficiary: 'referrer', reason: 'referral', level: 1, amount: 10_000, capped: 0, status: 'pending', availableAt: new Date(NOW.getTime() + 14 * DAY_MS).toISOString() }], 10_000],
    [
      'two-sided',
      [
        { beneficiary: 'referrer', reason: 'referral', level: 1, amount: 3_000, capped: 0, status: 'available', availableAt: available },
        { beneficiary: 'referee', reason: 'welcome', level: 0, amount: 5_000, capped: 0, status: 'available', availableAt: available },
      ],
      8_000,
    ],
    [
      'network',
      [
        { beneficiary: 'referrer', reason: 'referral', level: 1, amount: 5_000, capped: 0, status: 'available', availableAt: available },
        { beneficiary: 'referrer', reason: 'referral', level: 2, amount: 3_000, capped: 0, status: 'available', availableAt: available },
        { beneficiary: 'referrer', reason: 'referral', level: 3, amount: 0, capped: 1_000, status: 'available', availableAt: available },
      ],
      8_000,
    ],
    [
      'tiers',
      [
        { beneficiary: 'referrer', reason: 'referral', level: 1, amount: 3_000, capped: 0, status: 'available', availableAt: available },
        { beneficiary: 'client', reason: 'cashback', level: 0, amount: 3_000, capped: 0, status: 'available', availableAt: available },
      ],
      6_000,
    ],
  ];

  it.each(cases)('%s: a won referred deal of 100 000 ₽ pays what the README says', async (name, entries, total) => {
    const example = EXAMPLES.get(name)!;
    const res = await preview({ program: example.program, deal: deal(example.depth) });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ currency: 'RUB', deal: { amount: 100_000, currency: 'RUB', depth: example.depth }, priced: true, entries, total, fx: null });
    // The shape the settings form reads (src/contract/admin.ts).
    programPreviewAnswerSchema.parse(res.body);
  });

  it.each([...EXAMPLES.keys()])('%s is a complete document PUT /api/program stores as it is', async (name) => {
    const { program } = EXAMPLES.get(name)!;
    const res = await request(h.app).put('/api/program').set('Authorization', `Bearer ${ADMIN}`).set('X-Sarafan-Portal', h.portal.memberId).send(program);
    expect(res.status).toBe(200);
    expect((await h.store.programs.current(pid))?.document).toEqual(program);
  });
});

describe('POST /api/program/preview', () => {
  it('stores nothing and calls the portal for nothing (the caller check of profile is cached)', async () => {
    const before = await h.store.programs.current(pid);
    const queueBefore = await h.store.jobs.depth(pid);
    h.portal.resetCalls();
    const res = await preview({ program: EXAMPLES.get('network')!.program, deal: deal(3) });
    expect(res.status).toBe(200);
    expect(h.portal.calls.map((c) => c.method)).toEqual([]);
    const after = await h.store.programs.current(pid);
    expect(after?.version).toBe(before?.version);
    expect(await h.store.jobs.depth(pid)).toEqual(queueBefore);
  });

  it('a client nobody referred (depth 0) gets only cashback; a chain deeper than the levels pays the levels', async () => {
    const tiers = EXAMPLES.get('tiers')!.program;
    expect((await preview({ program: tiers, deal: deal(0, 40_000) })).body).toMatchObject({
      entries: [{ beneficiary: 'client', reason: 'cashback', level: 0, amount: 400 }],
      total: 400,
    });
    const res = await preview({ program: DEFAULT_PROGRAM, deal: deal(4, 1234.56) });
    expect(res.body.entries).toEqual([expect.objectContaining({ beneficiary: 'referrer', level: 1, amount: 123.46 })]);
  });

  it('a deal under the minimum pays no referral', async () => {
    const twoSided = EXAMPLES.get('two-sided')!.program;
    expect((await preview({ program: twoSided, deal: deal(1, 9_999.99) })).body).toMatchObject({ priced: true, entries: [], total: 0, fx: null });
  });

  it('a deal in another currency is converted with the portal rates, read once and cached; one without a rate is not priced', async () => {
    h.portal.resetCalls();
    const res = await preview({ program: DEFAULT_PROGRAM, deal: { ...deal(1, 1000), currency: 'USD' } });
    expect(res.status).toBe(200);
    // 1 000 USD at the portal's 90 RUB = 90 000 RUB; the direct referrer earns 10 %.
    expect(res.body).toMatchObject({ priced: true, total: 9000, fx: { currency: 'USD', amount: 1000 } });
    expect(Number(res.body.fx.rate)).toBe(90);
    programPreviewAnswerSchema.parse(res.body);
    expect(res.body.entries).toEqual([expect.objectContaining({ beneficiary: 'referrer', level: 1, amount: 9000 })]);
    expect(h.portal.commands().map((c) => c.method).filter((m) => m !== 'profile')).toEqual(['server.time', 'crm.currency.list']);
    expect((await h.store.portalSettings.get(pid))?.currencies.map((r) => r.currency)).toContain('USD');

    h.portal.resetCalls();
    const gbp = await preview({ program: DEFAULT_PROGRAM, deal: { ...deal(1), currency: 'GBP' } });
    expect(gbp.body).toMatchObject({ priced: false, reason: 'currency_not_converted', entries: [], total: 0, fx: null });
    expect(h.portal.commands().filter((c) => c.method !== 'profile')).toEqual([]); // the cached rates answered
  });

  it('answers 400 naming each bad path of the deal', async () => {
    const res = await preview({ program: DEFAULT_PROGRAM, deal: { amount: 10.001, currency: 'rub', depth: -1, extra: 1 } });
    expect(res.status).toBe(400);
    const details = res.body.error.details as { path: string; message: string }[];
    expect(details.map((d) => d.path).sort()).toEqual(['deal', 'deal.amount', 'deal.currency', 'deal.depth']);
    expect(details.find((d) => d.path === 'deal')?.message).toContain('extra');
  });

  it('answers 400 naming each missing or bad path of the program under "program."', async () => {
    const program: Record<string, unknown> = structuredClone(EXAMPLES.get('classic')!.program);
    delete program.landingUrl;
    (program.referral as Record<string, unknown>).levels = [];
    const res = await preview({ program, deal: deal(1) });
    expect(res.status).toBe(400);
    expect((res.body.error.details as { path: string }[]).map((d) => d.path).sort()).toEqual(['program.landingUrl', 'program.referral.levels']);
    expect((await preview({ deal: deal(1) })).body.error.details).toEqual([{ path: 'program', message: 'must be a JSON object: the complete program document' }]);
  });

  it('is for admins only (403) and needs credentials (401)', async () => {
    expect((await preview({ program: DEFAULT_PROGRAM, deal: deal(1) }, MANAGER)).status).toBe(403);
    expect((await request(h.app).post('/api/program/preview').send({})).status).toBe(401);
  });
});
