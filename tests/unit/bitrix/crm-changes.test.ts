/**
 * The CRM change scanner (reconciliation's wire side) against msw playing a portal: the exact
 * `batch` it sends (50 chained `crm.<entity>.list` pages, `$result` references, `start=-1`,
 * `>=DATE_MODIFY`, ID and DATE_MODIFY only), paging on from the last id while the last page was
 * full, and the end of the chain at the first short page whatever the later commands answer.
 */
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import qs from 'qs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCrmScanner, parseDateModify } from '../../../src/bitrix/crm-changes.js';
import { createPortalGateways } from '../../../src/bitrix/gateway.js';
import { PortalCallError } from '../../../src/handlers/errors.js';
import type { Installation, Log } from '../../../src/handlers/ports.js';

type Row = Record<string, unknown>;
const PORTAL = 'https://scan.example.test/rest/';
const SINCE = new Date('2026-03-01T09:00:00.750Z');
const quiet: Log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

/** Deals 1..n, every one modified at 12:00 +03:00 plus its id in seconds. */
function deals(n: number): Row[] {
  return Array.from({ length: n }, (_, i) => ({
    ID: String(i + 1),
    TITLE: `Сделка ${i + 1}`,
    DATE_MODIFY: new Date(Date.parse('2026-03-01T12:00:00+03:00') + (i + 1) * 1000).toISOString().replace(/\.000Z$/, '+00:00'),
  }));
}

interface Batch {
  halt: unknown;
  commands: { key: string; method: string; params: Row }[];
}

/**
 * A portal answering `batch` of `crm.deal.list` commands: references to earlier results are
 * resolved, a reference to a missing row is left as text — and such a command fails here, so
 * that a scanner reading past a short page would notice.
 */
function portal(rows: Row[], opts: { failAt?: string } = {}) {
  const batches: Batch[] = [];
  const handler = http.post(/^https:\/\/scan\.example\.test\/rest\//, async ({ request }) => {
    const url = new URL(request.url);
    const method = url.pathname.replace(/^\/rest\/+/, '');
    if (method !== 'batch') return HttpResponse.json({ error: 'ERROR_METHOD_NOT_FOUND', error_description: method }, { status: 404 });
    const body = (await request.json()) as { halt: unknown; cmd: Record<string, string> };
    const batch: Batch = { halt: body.halt, commands: [] };
    batches.push(batch);
    const result: Row = {};
    const errors: Row = {};
    const times: Row = {};
    for (const [key, line] of Object.entries(body.cmd)) {
      const [m, query] = line.split('?') as [string, string];
      const params = qs.parse(query) as Row;
      batch.commands.push({ key, method: m, params });
      times[key] = { start: 1772355600.25, date_start: '2026-03-01T12:00:00+03:00' };
      const filter = params.filter as Row;
      const after = String(filter['>ID']).replace(/^\$result\[(\w+)\]\[(\d+)\]\[ID\]$/, (all, k: string, i: string) => {
        const page = result[k] as Row[] | undefined;
        return page?.[Number(i)] ? String(page[Number(i)]!.ID) : all;
      });
      if (key === opts.failAt || !/^\d+$/.test(after)) {
        errors[key] = { error: '', error_description: `Bad filter >ID=${after}` };
        continue;
      }
      const from = Date.parse(String(filter['>=DATE_MODIFY']));
      result[key] = rows
        .filter((r) => Number(r.ID) > Number(after) && Date.parse(String(r.DATE_MODIFY)) >= from)
        .slice(0, 50)
        .map((r) => Object.fromEntries((params.select as string[]).map((f) => [f, r[f]])));
    }
    const map = (o: Row) => (Object.keys(o).length ? o : []);
    return HttpResponse.json({ result: { result: map(result), result_error: map(errors), result_total: [], result_next: [], result_time: map(times) }, time: { start: 0, finish: 0, duration: 0 } });
  });
  server.use(handler);
  return batches;
}

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const installation: Installation = {
  id: 3,
  memberId: 'scan-member',
  domain: 'scan.example.test',
  clientEndpoint: PORTAL,
  serverEndpoint: 'https://oauth.bitrix.info/rest/',
  status: 'active',
  scope: 'crm',
  userId: 1,
  applicationToken: 'app',
  tokens: { accessToken: 'scan-access', refreshToken: 'scan-refresh', expiresAt: new Date(Date.now() + 3600_000) },
  registration: null,
  createdAt: SINCE,
  updatedAt: SINCE,
  installedAt: SINCE,
  uninstalledAt: null,
  publicId: '0123456789abcdef0123',
  linkSalt: 'salt',
  lang: null,
};

const scanner = () =>
  createCrmScanner(
    createPortalGateways({
      installations: { saveTokens: async () => {} },
      clientId: 'app.scan',
      clientSecret: 'scan-secret',
      oauthUrl: 'https://oauth.example.test',
      allowInsecure: false,
      log: quiet,
      lookup: async () => [{ address: '93.184.216.34', family: 4 }],
      restrictionParams: { rateLimit: { burstLimit: 1000, drainRate: 1000 } },
      maxRetries: 0,
    }),
  );

describe('the CRM change scanner', () => {
  it('chains 50 list pages in one batch: start=-1, ID order, >ID from the last row of the page before, >=DATE_MODIFY, ID and DATE_MODIFY only', async () => {
    const batches = portal(deals(30));
    const page = await scanner().changedSince(installation, 'deal', SINCE, 0);
    expect(batches).toHaveLength(1);
    const [batch] = batches;
    expect(String(batch!.halt)).toBe('0');
    expect(batch!.commands).toHaveLength(50);
    expect(batch!.commands.map((c) => c.key)).toEqual(Array.from({ length: 50 }, (_, i) => `p${i}`));
    const expected = (afterId: string) => ({
      order: { ID: 'ASC' },
      filter: { '>=DATE_MODIFY': '2026-03-01T09:00:00+00:00', '>ID': afterId },
      select: ['ID', 'DATE_MODIFY'],
      start: '-1',
    });
    expect(batch!.commands[0]).toEqual({ key: 'p0', method: 'crm.deal.list', params: expected('0') });
    expect(batch!.commands[1]).toEqual({ key: 'p1', method: 'crm.deal.list', params: expected('$result[p0][49][ID]') });
    expect(batch!.commands[49]).toEqual({ key: 'p49', method: 'crm.deal.list', params: expected('$result[p48][49][ID]') });

    // A short first page ends the chain: the 49 commands referencing missing rows failed, and do not matter.
    expect(page.more).toBe(false);
    expect(page.entities.map((e) => e.id)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(page.entities[0]!.modifiedAt).toEqual(new Date('2026-03-01T09:00:01Z'));
    expect(page.listedAt).toEqual(new Date(1772355600250));
  });

  it('lists 2 500 rows per request and says when more may follow; the next request starts after the last id', async () => {
    const rows = deals(5_100);
    const batches = portal(rows);
    const scan = scanner();
    const first = await scan.changedSince(installation, 'deal', SINCE, 0);
    expect(first.entities).toHaveLength(2_500);
    expect(first.more).toBe(true);
    const second = await scan.changedSince(installation, 'deal', SINCE, first.entities.at(-1)!.id);
    expect(second.entities.map((e) => e.id)).toEqual(Array.from({ length: 2_500 }, (_, i) => 2_501 + i));
    expect(second.more).toBe(true);
    const third = await scan.changedSince(installation, 'deal', SINCE, 5_000);
    expect(third.entities.map((e) => e.id)).toEqual(Array.from({ length: 100 }, (_, i) => 5_001 + i));
    expect(third.more).toBe(false);
    expect(batches).toHaveLength(3);
    expect(batches.map((b) => b.commands[0]!.params.filter)).toEqual([
      { '>=DATE_MODIFY': '2026-03-01T09:00:00+00:00', '>ID': '0' },
      { '>=DATE_MODIFY': '2026-03-01T09:00:00+00:00', '>ID': '2500' },
      { '>=DATE_MODIFY': '2026-03-01T09:00:00+00:00', '>ID': '5000' },
    ]);
  });

  it('a page that ends exactly at a chain boundary leaves one empty page to the next request', async () => {
    const batches = portal(deals(2_500));
    const scan = scanner();
    const first = await scan.changedSince(installation, 'deal', SINCE, 0);
    expect([first.entities.length, first.more]).toEqual([2_500, true]);
    const second = await scan.changedSince(installation, 'deal', SINCE, 2_500);
    expect([second.entities.length, second.more]).toEqual([0, false]);
    expect(batches).toHaveLength(2);
  });

  it('only lists what changed since the given time', async () => {
    portal(deals(100));
    const page = await scanner().changedSince(installation, 'deal', new Date('2026-03-01T09:01:00Z'), 0);
    expect(page.entities.map((e) => e.id)).toEqual(Array.from({ length: 41 }, (_, i) => 60 + i));
  });

  it('a page failing before the chain ended fails the scan', async () => {
    portal(deals(120), { failAt: 'p1' });
    const error = await scanner().changedSince(installation, 'deal', SINCE, 0).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PortalCallError);
    expect((error as PortalCallError).message).toMatch(/Bad filter/);
  });

  it('reads DATE_MODIFY with the portal’s offset, and nothing that is not an ISO date-time', () => {
    expect(parseDateModify('2024-08-30T14:29:00+02:00')).toEqual(new Date('2024-08-30T12:29:00Z'));
    expect(parseDateModify('2024-08-30T14:29:00+0300')).toEqual(new Date('2024-08-30T11:29:00Z'));
    expect(parseDateModify('30.08.2024 14:29:00')).toBeNull();
    expect(parseDateModify('2024-08-30')).toBeNull();
    expect(parseDateModify(null)).toBeNull();
  });
});
