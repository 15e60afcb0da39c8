/**
 * Reading the portal's history (src/bitrix/crm-history.ts) through the real gateway and SDK
 * against msw playing a portal whose `batch` resolves `$result[…]` references the way the
 * sandbox does: a reference to a row that does not exist stays as text, and a list filtered
 * `>ID` by that text answers from the first row again. Asserted: the exact chained commands,
 * the paging across requests, and that nothing past a list's end is read.
 */
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';
import qs from 'qs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCrmHistory } from '../../../src/bitrix/crm-history.js';
import { createPortalGateways } from '../../../src/bitrix/gateway.js';
import { PortalCallError } from '../../../src/handlers/errors.js';
import type { HistoryPage, Installation, Log } from '../../../src/handlers/ports.js';

const PORTAL = 'https://portal.example.test/rest/';
const NOW = new Date('2026-03-01T12:00:00.000Z');
type Row = Record<string, unknown>;
type Entity = 'deal' | 'contact' | 'lead';

interface Command {
  key: string;
  method: string;
  params: Row;
}

/** A portal with rows per entity; records every batch's commands as sent (references unresolved). */
class HistoryPortal {
  readonly rows: Record<Entity, Row[]> = { deal: [], contact: [], lead: [] };
  readonly batches: Command[][] = [];
  readonly otherRequests: string[] = [];
  /** Commands answered with an error instead of rows. */
  readonly failing = new Map<string, { error: string; error_description: string }>();
  /** Rewrites the rows of a command before they are answered. */
  tamper: ((key: string, rows: Row[]) => Row[]) | null = null;

  handlers() {
    return [
      http.post(/^https:\/\/portal\.example\.test\/rest\//, async ({ request }) => {
        const method = new URL(request.url).pathname.replace(/^\/rest\/+/, '').replace(/\.json$/, '');
        const body = (await request.json()) as Row;
        if (method !== 'batch') {
          this.otherRequests.push(method);
          return HttpResponse.json({ error: 'ERROR_METHOD_NOT_FOUND', error_description: 'Method not found' }, { status: 404 });
        }
        return HttpResponse.json({ result: this.batch(body.cmd as Record<string, string>), time: { start: 0, finish: 0, duration: 0.01, processing: 0.01 } });
      }),
    ];
  }

  private batch(cmd: Record<string, string>): Row {
    const sent: Command[] = [];
    const result: Row = {};
    const errors: Row = {};
    for (const [key, line] of Object.entries(cmd)) {
      const q = line.indexOf('?');
      const method = line.slice(0, q);
      const params = qs.parse(line.slice(q + 1), { depth: 10 }) as Row;
      sent.push({ key, method, params: structuredClone(params) });
      const filter = params.filter as Row;
      const after = filter['>ID'] as string;
      const ref = /^\$result\[([^\]]+)\]\[(\d+)\]\[ID\]$/.exec(after);
      if (ref) {
        const row = (result[ref[1]!] as Row[] | undefined)?.[Number(ref[2])];
        if (row) filter['>ID'] = row.ID;
      }
      const failure = this.failing.get(key);
      if (failure) {
        errors[key] = failure;
        continue;
      }
      const entity = /^crm\.(deal|contact|lead)\.list$/.exec(method)![1] as Entity;
      let rows = this.rows[entity].filter((r) => matches(r, filter)).slice(0, 50);
      rows = rows.map((r) => Object.fromEntries((params.select as string[]).map((f) => [f, r[f] ?? null])));
      result[key] = this.tamper ? this.tamper(key, rows) : rows;
    }
    this.batches.push(sent);
    const map = (o: Row) => (Object.keys(o).length ? o : []);
    return { result: map(result), result_error: map(errors), result_total: [], result_next: [], result_time: [] };
  }
}

/** What the history lists filter by; a `>ID` that is not a number compares as text, like the sandbox. */
function matches(row: Row, filter: Row): boolean {
  for (const [key, want] of Object.entries(filter)) {
    if (key === '>ID') {
      const id = String(row.ID);
      if (/^\d+$/.test(String(want)) ? Number(id) <= Number(want) : id <= String(want)) return false;
    } else if (key.startsWith('!')) {
      const have = row[key.slice(1)];
      if (have === undefined || have === null || have === want) return false;
    } else if (row[key] !== want) return false;
  }
  return true;
}

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
afterEach(() => server.resetHandlers());

const quiet: Log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

const installation: Installation = {
  id: 7,
  memberId: 'member-history',
  domain: 'portal.example.test',
  clientEndpoint: PORTAL,
  serverEndpoint: 'https://oauth.bitrix.info/rest/',
  status: 'active',
  scope: 'crm',
  userId: 1,
  applicationToken: 'app-token',
  tokens: { accessToken: 'access-1', refreshToken: 'refresh-1', expiresAt: new Date(Date.now() + 3600_000) },
  registration: null,
  createdAt: NOW,
  updatedAt: NOW,
  installedAt: NOW,
  uninstalledAt: null,
  publicId: '0123456789abcdef0123',
  linkSalt: 'salt',
  lang: null,
};

function setup() {
  const portal = new HistoryPortal();
  server.use(...portal.handlers());
  const gateways = createPortalGateways({
    installations: { saveTokens: async () => {} },
    clientId: 'app.sarafan.test',
    clientSecret: 'secret',
    oauthUrl: 'https://oauth.example.test',
    allowInsecure: false,
    log: quiet,
    lookup: async () => [{ address: '93.184.216.34', family: 4 }],
    restrictionParams: { rateLimit: { burstLimit: 1000, drainRate: 1000 }, retryDelay: 10 },
    maxRetries: 0,
  });
  const history = createCrmHistory(gateways, { now: () => NOW });
  const read = async (): Promise<HistoryPage[]> => {
    const pages: HistoryPage[] = [];
    await history.read(installation, async (page) => void pages.push(page));
    return pages;
  };
  return { portal, read };
}

let nextId = 1;
function wonDeals(portal: HistoryPortal, n: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = nextId++;
    ids.push(id);
    portal.rows.deal.push({ ID: String(id), STAGE_SEMANTIC_ID: 'S', CONTACT_ID: String(1000 + id), LEAD_ID: null, CATEGORY_ID: '0', OPPORTUNITY: '100.00', CURRENCY_ID: 'RUB' });
  }
  return ids;
}

const DEAL_SELECT = ['ID', 'CONTACT_ID', 'LEAD_ID', 'CATEGORY_ID', 'OPPORTUNITY', 'CURRENCY_ID', 'MOVED_TIME', 'CLOSEDATE', 'DATE_MODIFY', 'DATE_CREATE'];
const LISTS = [
  { key: 'd', method: 'crm.deal.list', filter: { STAGE_SEMANTIC_ID: 'S' }, select: DEAL_SELECT },
  { key: 'cc', method: 'crm.contact.list', filter: { '!UF_CRM_SARAFAN_CODE': '' }, select: ['ID'] },
  { key: 'cr', method: 'crm.contact.list', filter: { '!UF_CRM_SARAFAN_REF_CODE': '' }, select: ['ID'] },
  { key: 'lc', method: 'crm.lead.list', filter: { '!UF_CRM_SARAFAN_CODE': '' }, select: ['ID'] },
  { key: 'lr', method: 'crm.lead.list', filter: { '!UF_CRM_SARAFAN_REF_CODE': '' }, select: ['ID'] },
];

/** The commands of one list chained in a request: the first after `cursor`, each next after the 50th row of the one before. */
function chain(list: (typeof LISTS)[number], count: number, cursor: number): Command[] {
  return Array.from({ length: count }, (_v, n) => ({
    key: `${list.key}${n}`,
    method: list.method,
    params: {
      order: { ID: 'ASC' },
      filter: { ...list.filter, '>ID': n === 0 ? String(cursor) : `$result[${list.key}${n - 1}][49][ID]` },
      select: list.select,
      start: '-1',
    },
  }));
}

describe('reading the history in chained batches', () => {
  it('reads a small portal in one request: five lists of ten chained commands, deals parsed from the legacy strings', async () => {
    const { portal, read } = setup();
    portal.rows.deal.push(
      { ID: '3', STAGE_SEMANTIC_ID: 'S', CONTACT_ID: '12', LEAD_ID: '4', CATEGORY_ID: '2', OPPORTUNITY: '1500.05', CURRENCY_ID: 'USD',
        MOVED_TIME: '2024-08-30T14:29:00+03:00', CLOSEDATE: '2024-09-01T00:00:00+03:00', DATE_MODIFY: '2024-09-02T10:00:00+03:00', DATE_CREATE: '2024-08-01T09:00:00+03:00' },
      { ID: '5', STAGE_SEMANTIC_ID: 'F', CONTACT_ID: '13', OPPORTUNITY: '99.00' },
      { ID: '8', STAGE_SEMANTIC_ID: 'S', CONTACT_ID: null, LEAD_ID: '9', CATEGORY_ID: '0', OPPORTUNITY: '0.00', CURRENCY_ID: 'RUB',
        MOVED_TIME: '', CLOSEDATE: '2023-12-31T00:00:00+03:00', DATE_MODIFY: '2024-01-05T10:00:00+03:00', DATE_CREATE: '' },
      { ID: '11', STAGE_SEMANTIC_ID: 'S', CONTACT_ID: '0', LEAD_ID: '', CATEGORY_ID: '1', OPPORTUNITY: '7', CURRENCY_ID: 'EUR', DATE_MODIFY: '2024-02-01T10:00:00+03:00' },
    );
    portal.rows.contact.push(
      { ID: '12', UF_CRM_SARAFAN_CODE: 'ABC234', UF_CRM_SARAFAN_REF_CODE: null },
      { ID: '13', UF_CRM_SARAFAN_CODE: null, UF_CRM_SARAFAN_REF_CODE: 'abc234' },
      { ID: '14', UF_CRM_SARAFAN_CODE: null, UF_CRM_SARAFAN_REF_CODE: null },
    );
    portal.rows.lead.push({ ID: '9', UF_CRM_SARAFAN_CODE: null, UF_CRM_SARAFAN_REF_CODE: 'XYZ789' });

    const pages = await read();

    expect(portal.otherRequests).toEqual([]);
    expect(portal.batches).toHaveLength(1);
    expect(portal.batches[0]).toEqual(LISTS.flatMap((l) => chain(l, 10, 0)));
    expect(pages).toEqual([
      {
        wins: [
          { dealId: 3, contactId: 12, leadId: 4, categoryId: 2, amount: 1500_05, currency: 'USD', wonAt: new Date('2024-08-30T11:29:00Z'), createdAt: new Date('2024-08-01T06:00:00Z') },
          { dealId: 8, contactId: null, leadId: 9, categoryId: 0, amount: 0, currency: 'RUB', wonAt: new Date('2023-12-30T21:00:00Z'), createdAt: null },
          { dealId: 11, contactId: null, leadId: null, categoryId: 1, amount: 700, currency: 'EUR', wonAt: new Date('2024-02-01T07:00:00Z'), createdAt: null },
        ],
        people: [
          { entity: 'contact', id: 12 },
          { entity: 'contact', id: 13 },
          { entity: 'lead', id: 9 },
        ],
      },
    ]);
  });

  it('pages on with >ID across requests, the deals taking every command once the people are read, and ignores what follows a short page', async () => {
    const { portal, read } = setup();
    const ids = wonDeals(portal, 1234);
    portal.rows.contact.push({ ID: '1', UF_CRM_SARAFAN_CODE: 'AAA222' });

    const pages = await read();

    expect(portal.batches).toHaveLength(2);
    expect(portal.batches[0]).toEqual(LISTS.flatMap((l) => chain(l, 10, 0)));
    // 500 deals in the first request; the second continues after the 500th with all 50 commands.
    expect(portal.batches[1]).toEqual(chain(LISTS[0]!, 50, ids[499]!));
    const read1 = pages.flatMap((p) => p.wins.map((w) => w.dealId));
    expect(read1).toEqual(ids);
    expect(pages.map((p) => p.wins.length)).toEqual([500, 734]);
    expect(pages.flatMap((p) => p.people)).toEqual([{ entity: 'contact', id: 1 }]);
  });

  it('asks once more after a request whose every page was full, and stops at the empty page', async () => {
    const { portal, read } = setup();
    const ids = wonDeals(portal, 3000);
    const pages = await read();
    expect(portal.batches.map((b) => b.length)).toEqual([50, 50, 50]);
    expect(portal.batches[2]).toEqual(chain(LISTS[0]!, 50, ids[2999]!));
    expect(pages.map((p) => p.wins.length)).toEqual([500, 2500, 0]);
    expect(new Set(pages.flatMap((p) => p.wins.map((w) => w.dealId))).size).toBe(3000);
  });

  it('fails on an error of a command it needs, and ignores one after a list ended', async () => {
    const needed = setup();
    wonDeals(needed.portal, 120);
    needed.portal.failing.set('d2', { error: '', error_description: 'Access denied.' });
    const error = await needed.read().then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(PortalCallError);
    expect(error).toMatchObject({ method: 'crm.deal.list', code: '', description: 'Access denied.' });

    const after = setup();
    wonDeals(after.portal, 120);
    after.portal.failing.set('d4', { error: 'INVALID_FILTER', error_description: 'Bad >ID' });
    const pages = await after.read();
    expect(pages.flatMap((p) => p.wins)).toHaveLength(120);
  });

  it('refuses pages that do not continue the list instead of skipping history', async () => {
    const { portal, read } = setup();
    wonDeals(portal, 120);
    portal.tamper = (key, rows) => (key === 'd1' ? [...rows].reverse() : rows);
    const error = await read().then(() => null, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNEXPECTED_ANSWER', method: 'crm.deal.list' });
  });
});
