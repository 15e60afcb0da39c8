/**
 * The portal gateway against msw playing a portal (`https://portal.example.test/rest/`) and the
 * OAuth server (`https://oauth.example.test`), with the real b24jssdk underneath.
 */
import { http, HttpResponse, type JsonBodyType } from 'msw';
import { setupServer } from 'msw/node';
import qs from 'qs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPortalGateways, type PortalGatewaysOptions } from '../../../src/bitrix/gateway.js';
import type { LookupAll } from '../../../src/bitrix/portal-endpoint.js';
import { PortalCallError } from '../../../src/handlers/errors.js';
import type { Installation, Log, PortalTokens } from '../../../src/handlers/ports.js';

const PORTAL = 'https://portal.example.test/rest/';
const OAUTH = 'https://oauth.example.test';
const TOKEN_URL = `${OAUTH}/oauth/token/`;
const CLIENT_ID = 'app.sarafan.test';
const CLIENT_SECRET = 'client-secret-do-not-leak';
const MEMBER = 'member-abc';
const OLD_ACCESS = 'access-old-1111';
const OLD_REFRESH = 'refresh-old-2222';
const NEW_ACCESS = 'access-new-3333';
const NEW_REFRESH = 'refresh-new-4444';
const SECRETS = [CLIENT_SECRET, OLD_ACCESS, OLD_REFRESH, NEW_ACCESS, NEW_REFRESH];

type Row = Record<string, unknown>;
interface PortalRequest {
  method: string;
  token: unknown;
  body: Row;
}
type Reply = { status?: number; body: JsonBodyType } | 'network-error';
type Responder = (req: PortalRequest) => Reply | Promise<Reply>;

/** A scripted portal: one responder per REST method, every request recorded in order. */
class ScriptedPortal {
  readonly requests: PortalRequest[] = [];
  readonly oauthForms: Record<string, string>[] = [];
  readonly events: string[] = [];
  private readonly responders = new Map<string, Responder>();

  on(method: string, responder: Responder): this {
    this.responders.set(method, responder);
    return this;
  }

  calls(method: string): PortalRequest[] {
    return this.requests.filter((r) => r.method === method);
  }

  handlers() {
    return [
      http.post(/^https:\/\/portal\.example\.test\/rest\//, async ({ request }) => {
        const url = new URL(request.url);
        const method = url.pathname.replace(/^\/rest\/+/, '').replace(/\.json$/, '');
        const body = (await request.json()) as Row;
        const req = { method, token: body.auth, body };
        this.requests.push(req);
        this.events.push(`portal:${method}:${String(body.auth)}`);
        const responder = this.responders.get(method);
        if (!responder) return HttpResponse.json({ error: 'ERROR_METHOD_NOT_FOUND', error_description: 'Method not found' }, { status: 404 });
        const reply = await responder(req);
        if (reply === 'network-error') return HttpResponse.error();
        return HttpResponse.json(reply.body, { status: reply.status ?? 200 });
      }),
      http.post(TOKEN_URL, async ({ request }) => {
        const form = Object.fromEntries(new URLSearchParams(await request.text()));
        this.oauthForms.push(form);
        this.events.push('oauth');
        await new Promise((r) => setTimeout(r, 20));
        return HttpResponse.json({
          access_token: NEW_ACCESS,
          refresh_token: NEW_REFRESH,
          client_endpoint: PORTAL,
          domain: 'oauth.example.test',
          expires: Math.floor(Date.now() / 1000) + 3600,
          expires_in: 3600,
          member_id: MEMBER,
          scope: 'crm,placement',
          server_endpoint: `${OAUTH}/rest/`,
          status: 'F',
          user_id: 1,
        });
      }),
    ];
  }
}

const ok = (result: unknown): Reply => ({ body: { result, time: { start: 0, finish: 0, duration: 0.01, processing: 0.01, operating: 0 } } });
const fail = (status: number, error: string, description: string): Reply => ({ status, body: { error, error_description: description } });
/** The portal's view of a token: only the current pair is valid. */
const byToken = (valid: string, result: unknown): Responder => (req) =>
  req.token === valid ? ok(result) : fail(401, 'expired_token', 'The access token provided has expired.');

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

let logLines: string[] = [];
afterEach(() => {
  server.resetHandlers();
  // Nothing the gateway or the SDK logged may carry a token or the client secret.
  const all = logLines.join('\n');
  for (const secret of SECRETS) expect(all).not.toContain(secret);
  logLines = [];
});

const recordingLog: Log = {
  info: (f, m) => logLines.push(`info ${m} ${JSON.stringify(f)}`),
  warn: (f, m) => logLines.push(`warn ${m} ${JSON.stringify(f)}`),
  error: (f, m) => logLines.push(`error ${m} ${JSON.stringify(f)}`),
  debug: (f, m) => logLines.push(`debug ${m} ${JSON.stringify(f)}`),
};

const publicDns: LookupAll = async () => [{ address: '93.184.216.34', family: 4 }];

function installation(over: Partial<Installation> = {}, tokens: Partial<PortalTokens> = {}): Installation {
  const at = new Date();
  return {
    id: 7,
    memberId: MEMBER,
    domain: 'portal.example.test',
    clientEndpoint: PORTAL,
    serverEndpoint: 'https://oauth.bitrix.info/rest/',
    status: 'active',
    scope: 'crm,placement',
    userId: 1,
    applicationToken: 'app-token',
    tokens: { accessToken: OLD_ACCESS, refreshToken: OLD_REFRESH, expiresAt: new Date(Date.now() + 3600_000), ...tokens },
    registration: null,
    createdAt: at,
    updatedAt: at,
    installedAt: at,
    uninstalledAt: null,
    publicId: '0123456789abcdef0123',
    linkSalt: 'salt',
    lang: null,
    ...over,
  };
}

function setup(over: Partial<PortalGatewaysOptions> = {}) {
  const portal = new ScriptedPortal();
  server.use(...portal.handlers());
  const saved: { id: number; tokens: PortalTokens }[] = [];
  const saveTokens = vi.fn(async (id: number, tokens: PortalTokens) => {
    await new Promise((r) => setTimeout(r, 30));
    saved.push({ id, tokens });
    portal.events.push(`save:${tokens.accessToken}`);
  });
  const gateways = createPortalGateways({
    installations: { saveTokens },
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    oauthUrl: OAUTH,
    allowInsecure: false,
    log: recordingLog,
    lookup: publicDns,
    // Keep the real limiter but make its waits short.
    restrictionParams: { rateLimit: { burstLimit: 1000, drainRate: 1000 }, retryDelay: 10 },
    maxRetries: 4,
    ...over,
  });
  return { portal, gateways, saveTokens, saved };
}

async function rejection(p: Promise<unknown>): Promise<PortalCallError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PortalCallError);
    return e as PortalCallError;
  }
  throw new Error('expected a rejection');
}

describe('call', () => {
  it('sends the stored access token to the stored endpoint and returns result', async () => {
    const { portal, gateways } = setup();
    portal.on('crm.deal.get', (req) => ok({ ID: String(req.body.id), TITLE: 'Deal' }));
    const deal = await gateways.forInstallation(installation()).call<{ ID: string }>('crm.deal.get', { id: 5 });
    expect(deal).toEqual({ ID: '5', TITLE: 'Deal' });
    expect(portal.requests).toEqual([{ method: 'crm.deal.get', token: OLD_ACCESS, body: { id: 5, auth: OLD_ACCESS } }]);
    expect(portal.oauthForms).toEqual([]);
  });

  it('on 401 expired_token refreshes once at B24_OAUTH_URL, stores the pair, then replays with it', async () => {
    const { portal, gateways, saved } = setup();
    portal.on('crm.deal.get', byToken(NEW_ACCESS, { ID: '5' }));
    const gateway = gateways.forInstallation(installation());

    expect(await gateway.call('crm.deal.get', { id: 5 })).toEqual({ ID: '5' });
    expect(portal.oauthForms).toEqual([{ grant_type: 'refresh_token', client_id: CLIENT_ID, client_secret: CLIENT_SECRET, refresh_token: OLD_REFRESH }]);
    expect(saved).toEqual([{ id: 7, tokens: { accessToken: NEW_ACCESS, refreshToken: NEW_REFRESH, expiresAt: expect.any(Date) } }]);
    expect(saved[0]!.tokens.expiresAt.getTime()).toBeGreaterThan(Date.now() + 3500_000);
    // The replay reaches the portal only after the rotated pair was stored.
    expect(portal.events).toEqual([`portal:crm.deal.get:${OLD_ACCESS}`, 'oauth', `save:${NEW_ACCESS}`, `portal:crm.deal.get:${NEW_ACCESS}`]);

    // The next call uses the new pair straight away.
    await gateway.call('crm.deal.get', { id: 6 });
    expect(portal.requests.at(-1)!.token).toBe(NEW_ACCESS);
    expect(portal.oauthForms).toHaveLength(1);
    // The secret went to the OAuth server only.
    expect(JSON.stringify(portal.requests)).not.toContain(CLIENT_SECRET);
  });

  it('five concurrent calls with a locally expired token cause one refresh', async () => {
    const { portal, gateways, saveTokens } = setup();
    portal.on('crm.deal.get', byToken(NEW_ACCESS, { ID: '1' }));
    const gateway = gateways.forInstallation(installation({}, { expiresAt: new Date(Date.now() - 1000) }));
    const results = await Promise.all([1, 2, 3, 4, 5].map((id) => gateway.call('crm.deal.get', { id })));
    expect(results).toHaveLength(5);
    expect(portal.oauthForms).toHaveLength(1);
    expect(saveTokens).toHaveBeenCalledTimes(1);
    expect(portal.requests.map((r) => r.token)).toEqual(Array(5).fill(NEW_ACCESS));
  });

  it('five concurrent calls all answered 401 cause one refresh', async () => {
    const { portal, gateways, saveTokens } = setup();
    portal.on('crm.deal.get', byToken(NEW_ACCESS, { ID: '1' }));
    const gateway = gateways.forInstallation(installation());
    await Promise.all([1, 2, 3, 4, 5].map((id) => gateway.call('crm.deal.get', { id })));
    expect(portal.oauthForms).toHaveLength(1);
    expect(saveTokens).toHaveBeenCalledTimes(1);
    expect(portal.requests.filter((r) => r.token === NEW_ACCESS)).toHaveLength(5);
  });

  it('one refresh per portal across gateway objects of the same installation', async () => {
    const { portal, gateways } = setup();
    portal.on('crm.deal.get', byToken(NEW_ACCESS, { ID: '1' }));
    const expired = installation({}, { expiresAt: new Date(Date.now() - 1000) });
    await Promise.all([gateways.forInstallation(expired).call('crm.deal.get'), gateways.forInstallation(expired).call('crm.deal.get')]);
    expect(portal.oauthForms).toHaveLength(1);
  });

  it('keeps the rotated pair when storing it failed, and stores it before using it', async () => {
    const { portal, gateways, saveTokens, saved } = setup();
    saveTokens.mockRejectedValueOnce(new Error('database is down'));
    portal.on('crm.deal.get', byToken(NEW_ACCESS, { ID: '1' }));
    const gateway = gateways.forInstallation(installation());

    await expect(gateway.call('crm.deal.get', { id: 1 })).rejects.toBeInstanceOf(PortalCallError);
    expect(portal.events).toEqual([`portal:crm.deal.get:${OLD_ACCESS}`, 'oauth']);
    expect(logLines.some((l) => l.includes('gateway.tokens_persist_failed'))).toBe(true);

    // The spent refresh token is not used again: the held pair is stored first, then used.
    expect(await gateway.call('crm.deal.get', { id: 1 })).toEqual({ ID: '1' });
    expect(portal.oauthForms).toHaveLength(1);
    expect(saved.map((s) => s.tokens.refreshToken)).toEqual([NEW_REFRESH]);
    expect(portal.events.slice(2)).toEqual([`portal:crm.deal.get:${OLD_ACCESS}`, `save:${NEW_ACCESS}`, `portal:crm.deal.get:${NEW_ACCESS}`]);
  });

  it('adopts a pair stored by another instance but never one it rotated away from', async () => {
    const { portal, gateways } = setup();
    portal.on('crm.deal.get', (req) => (req.token === OLD_ACCESS ? fail(401, 'expired_token', 'expired') : ok({ token: req.token })));
    await gateways.forInstallation(installation()).call('crm.deal.get');
    // A stale installation object (the pair before rotation) does not bring the spent pair back.
    expect(await gateways.forInstallation(installation()).call('crm.deal.get')).toEqual({ token: NEW_ACCESS });
    // A pair this process never held is newer: use it.
    const elsewhere = installation({}, { accessToken: 'access-from-other-instance', refreshToken: 'refresh-from-other-instance' });
    expect(await gateways.forInstallation(elsewhere).call('crm.deal.get')).toEqual({ token: 'access-from-other-instance' });
    expect(portal.oauthForms).toHaveLength(1);
  });

  it('forwards SDK log records at debug, without request data', async () => {
    const { portal, gateways } = setup();
    portal.on('crm.contact.get', () => ok({ ID: '1', NAME: 'Private Person' }));
    await gateways.forInstallation(installation()).call('crm.contact.get', { id: 1, fields: { PHONE: '+70000000000' } });
    const sdk = logLines.filter((l) => l.includes('portal.sdk'));
    expect(sdk.length).toBeGreaterThan(0);
    expect(sdk.every((l) => l.startsWith('debug '))).toBe(true);
    expect(sdk.join('\n')).not.toMatch(/Private Person|\+70000000000/);
  });

  it('an installation without tokens fails its calls', async () => {
    const { portal, gateways } = setup();
    const err = await rejection(gateways.forInstallation(installation({ status: 'uninstalled', tokens: null })).call('profile'));
    expect(err.code).toBe('unauthorized');
    expect(portal.requests).toEqual([]);
  });

  it('a refused refresh fails the call without leaking the refresh token and stores nothing', async () => {
    const { portal, gateways, saveTokens } = setup();
    portal.on('crm.deal.get', byToken(NEW_ACCESS, {}));
    server.use(http.post(TOKEN_URL, () => HttpResponse.json({ error: 'invalid_grant', error_description: 'Invalid refresh token' }, { status: 400 })));
    const err = await rejection(gateways.forInstallation(installation()).call('crm.deal.get', { id: 1 }));
    expect(err.code).toBe('install_unverified');
    expect(err.description).toContain('invalid_grant');
    expect(`${err.message} ${err.description}`).not.toContain(OLD_REFRESH);
    expect(saveTokens).not.toHaveBeenCalled();
  });

  it('recovers the description of a legacy error with an empty code', async () => {
    const { portal, gateways } = setup();
    portal.on('crm.deal.get', () => fail(400, '', 'Not found'));
    const err = await rejection(gateways.forInstallation(installation()).call('crm.deal.get', { id: 404 }));
    expect(err).toMatchObject({ method: 'crm.deal.get', code: '', status: 400, description: 'Not found' });
    expect(portal.requests).toHaveLength(1);
  });

  it('keeps Bitrix24 codes and does not retry 4xx', async () => {
    const { portal, gateways } = setup();
    portal.on('placement.bind', () => fail(403, 'WRONG_AUTH_TYPE', 'Application context required'));
    const err = await rejection(gateways.forInstallation(installation()).call('placement.bind', {}));
    expect(err).toMatchObject({ code: 'WRONG_AUTH_TYPE', status: 403, description: 'Application context required' });
    expect(portal.requests).toHaveLength(1);
  });

  it('retries 503 QUERY_LIMIT_EXCEEDED', async () => {
    const { portal, gateways } = setup();
    let n = 0;
    portal.on('crm.deal.get', () => (++n === 1 ? fail(503, 'QUERY_LIMIT_EXCEEDED', 'Too many requests') : ok({ ID: '1' })));
    expect(await gateways.forInstallation(installation()).call('crm.deal.get', { id: 1 })).toEqual({ ID: '1' });
    expect(portal.requests).toHaveLength(2);
  });

  it('retries 500 INTERNAL_SERVER_ERROR (which the SDK treats as final)', async () => {
    const { portal, gateways } = setup();
    let n = 0;
    portal.on('crm.deal.get', () => (++n === 1 ? fail(500, 'INTERNAL_SERVER_ERROR', 'Internal server error') : ok({ ID: '1' })));
    expect(await gateways.forInstallation(installation()).call('crm.deal.get', { id: 1 })).toEqual({ ID: '1' });
    expect(portal.requests).toHaveLength(2);
  });

  it('retries 502 and network errors', async () => {
    const { portal, gateways } = setup();
    let n = 0;
    portal.on('crm.deal.get', () => {
      n++;
      if (n === 1) return { status: 502, body: '<html>Bad gateway</html>' };
      if (n === 2) return 'network-error';
      return ok({ ID: '1' });
    });
    expect(await gateways.forInstallation(installation()).call('crm.deal.get', { id: 1 })).toEqual({ ID: '1' });
    expect(portal.requests).toHaveLength(3);
  });

  it('gives up after maxRetries retries', async () => {
    const { portal, gateways } = setup({ maxRetries: 2 });
    portal.on('crm.deal.get', () => fail(500, 'INTERNAL_SERVER_ERROR', 'Internal server error'));
    const err = await rejection(gateways.forInstallation(installation()).call('crm.deal.get', { id: 1 }));
    expect(err).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', status: 500 });
    expect(portal.requests).toHaveLength(3);
  });

  it('refuses an insecure stored endpoint without any request', async () => {
    const { portal, gateways } = setup();
    const err = await rejection(gateways.forInstallation(installation({ clientEndpoint: 'http://portal.example.test/rest/' })).call('profile'));
    expect(err.code).toBe('insecure_portal');
    expect(portal.requests).toEqual([]);
  });

  it('refuses a portal whose name resolves to a private address', async () => {
    const { portal, gateways } = setup({ lookup: async () => [{ address: '10.0.0.8', family: 4 }] });
    const err = await rejection(gateways.forInstallation(installation()).call('profile'));
    expect(err.code).toBe('insecure_portal');
    expect(portal.requests).toEqual([]);
  });

  it('resolves the portal once before the first call; an unresolvable name is left to the connection', async () => {
    const lookup = vi.fn<LookupAll>(async () => [{ address: '93.184.216.34', family: 4 }]);
    const { portal, gateways } = setup({ lookup });
    portal.on('profile', () => ok({ ID: '1' }));
    const gateway = gateways.forInstallation(installation());
    await gateway.call('profile');
    await gateway.call('profile');
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(lookup).toHaveBeenCalledWith('portal.example.test', { all: true });

    const { portal: other, gateways: unresolved } = setup({
      lookup: async () => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
      },
    });
    other.on('profile', () => ok({ ID: '1' }));
    expect(await unresolved.forInstallation(installation()).call('profile')).toEqual({ ID: '1' });
  });

  it('recreates the client when the stored endpoint changed, and forget() drops it', async () => {
    const { portal, gateways } = setup();
    portal.on('profile', () => ok({ ID: '1' }));
    const other = 'https://renamed.example.test/rest/';
    server.use(
      http.post(/^https:\/\/renamed\.example\.test\/rest\//, async ({ request }) => {
        portal.events.push(`renamed:${String(((await request.json()) as Row).auth)}`);
        return HttpResponse.json({ result: { ID: '1' }, time: {} });
      }),
    );
    await gateways.forInstallation(installation()).call('profile');
    await gateways.forInstallation(installation({ clientEndpoint: other })).call('profile');
    expect(portal.events).toEqual([`portal:profile:${OLD_ACCESS}`, `renamed:${OLD_ACCESS}`]);
    gateways.forget(MEMBER);
    await gateways.forInstallation(installation()).call('profile');
    expect(portal.requests).toHaveLength(2);
  });
});

describe('batch', () => {
  it('sends 120 commands as 50/50/20 with halt=0 and returns outcomes in input order', async () => {
    const { portal, gateways } = setup();
    portal.on('batch', (req) => {
      const cmd = req.body.cmd as Record<string, string>;
      const result: Row = {};
      const resultError: Row = {};
      for (const [key, row] of Object.entries(cmd)) {
        const [method, query] = row.split('?') as [string, string];
        const params = qs.parse(query) as Row;
        const id = Number(params.id);
        if (id === 7) resultError[key] = { error: '', error_description: 'Not found' };
        else if (id === 63) resultError[key] = { error: 'ACCESS_DENIED', error_description: 'Access denied' };
        else result[key] = { method, id, filter: params.filter ?? null };
      }
      return ok({ result, result_error: Object.keys(resultError).length ? resultError : [], result_total: [], result_next: [], result_time: [] });
    });
    const commands = Array.from({ length: 120 }, (_, i) => ({ method: 'crm.deal.get', params: { id: i, filter: { '>ID': 0, STAGE: ['A', 'B'] } } }));
    const outcomes = await gateways.forInstallation(installation()).batch(commands);

    const batches = portal.calls('batch');
    expect(batches.map((b) => Object.keys(b.body.cmd as Row).length)).toEqual([50, 50, 20]);
    expect(batches.every((b) => b.body.halt === 0 && b.token === OLD_ACCESS)).toBe(true);
    expect(outcomes).toHaveLength(120);
    outcomes.forEach((o, i) => {
      if (i === 7) expect(o).toEqual({ ok: false, error: '', description: 'Not found' });
      else if (i === 63) expect(o).toEqual({ ok: false, error: 'ACCESS_DENIED', description: 'Access denied' });
      else expect(o).toEqual({ ok: true, result: { method: 'crm.deal.get', id: i, filter: { '>ID': '0', STAGE: ['A', 'B'] } } });
    });
  });

  it('reports a command missing from the answer instead of failing the batch', async () => {
    const { portal, gateways } = setup();
    portal.on('batch', () => ok({ result: { c0: true }, result_error: [] }));
    const outcomes = await gateways.forInstallation(installation()).batch([{ method: 'a' }, { method: 'b' }]);
    expect(outcomes).toEqual([
      { ok: true, result: true },
      { ok: false, error: 'NO_RESULT', description: expect.any(String) },
    ]);
  });

  it('throws PortalCallError when a whole batch request fails, sends nothing for no commands', async () => {
    const { portal, gateways } = setup();
    portal.on('batch', () => fail(400, 'ERROR_BATCH_LENGTH_EXCEEDED', 'Max batch length exceeded'));
    const gateway = gateways.forInstallation(installation());
    expect(await gateway.batch([])).toEqual([]);
    const err = await rejection(gateway.batch([{ method: 'crm.deal.get', params: { id: 1 } }]));
    expect(err).toMatchObject({ method: 'batch', code: 'ERROR_BATCH_LENGTH_EXCEEDED', status: 400 });
  });
});

describe('list', () => {
  const rows = Array.from({ length: 120 }, (_, i) => ({ ID: String(i + 1), TITLE: `Deal ${i + 1}` }));

  it('pages with start=-1 and >ID over 120 rows', async () => {
    const { portal, gateways } = setup();
    portal.on('crm.deal.list', (req) => {
      const filter = req.body.filter as Row;
      const after = Number(filter['>ID']);
      const page = rows.filter((r) => Number(r.ID) > after && (filter.STAGE_SEMANTIC_ID === undefined || filter.STAGE_SEMANTIC_ID === 'S')).slice(0, 50);
      return { body: { result: page, total: 0, time: {} } };
    });
    const all = await gateways
      .forInstallation(installation())
      .list('crm.deal.list', { filter: { STAGE_SEMANTIC_ID: 'S' }, select: ['TITLE'], order: { DATE_CREATE: 'DESC' }, start: 100 });
    expect(all).toEqual(rows);
    const requests = portal.calls('crm.deal.list');
    expect(requests.map((r) => (r.body.filter as Row)['>ID'])).toEqual([0, 50, 100]);
    for (const r of requests) {
      expect(r.body).toMatchObject({ start: -1, order: { ID: 'ASC' }, select: ['TITLE', 'ID'], filter: { STAGE_SEMANTIC_ID: 'S' } });
    }
  });

  it('reads crm.item.list rows from result.items with idKey id', async () => {
    const { portal, gateways } = setup();
    const items = rows.slice(0, 60).map((r) => ({ id: Number(r.ID), title: r.TITLE }));
    portal.on('crm.item.list', (req) => {
      const after = Number((req.body.filter as Row)['>id']);
      return ok({ items: items.filter((r) => r.id > after).slice(0, 50) });
    });
    const all = await gateways.forInstallation(installation()).list('crm.item.list', { entityTypeId: 2 }, { idKey: 'id', itemsKey: 'items' });
    expect(all).toEqual(items);
    expect(portal.calls('crm.item.list').map((r) => r.body)).toEqual([
      expect.objectContaining({ entityTypeId: 2, order: { id: 'ASC' }, filter: { '>id': 0 }, start: -1 }),
      expect.objectContaining({ filter: { '>id': 50 } }),
    ]);
  });
});

describe('whoIs', () => {
  const USER_TOKEN = 'user-token-5555';

  it("asks profile at the stored endpoint with the user's token and caches the answer", async () => {
    const { portal, gateways } = setup();
    portal.on('profile', (req) => (req.token === USER_TOKEN ? ok({ ID: '12', ADMIN: true, NAME: 'Ann' }) : fail(401, 'NO_AUTH_FOUND', 'Wrong authorization data')));
    const inst = installation();
    expect(await gateways.whoIs(inst, USER_TOKEN)).toEqual({ userId: 12, isAdmin: true });
    expect(await gateways.whoIs(inst, USER_TOKEN)).toEqual({ userId: 12, isAdmin: true });
    expect(portal.requests).toEqual([{ method: 'profile', token: USER_TOKEN, body: { auth: USER_TOKEN } }]);
    // Another token is another question.
    expect(await gateways.whoIs(inst, 'someone-else')).toBeNull();
    expect(portal.requests).toHaveLength(2);
    expect(portal.oauthForms).toEqual([]);
  });

  it('returns null on 401 without ever refreshing, and does not cache refusals', async () => {
    const { portal, gateways } = setup();
    portal.on('profile', () => fail(401, 'expired_token', 'The access token provided has expired.'));
    const inst = installation();
    expect(await gateways.whoIs(inst, USER_TOKEN)).toBeNull();
    expect(await gateways.whoIs(inst, USER_TOKEN)).toBeNull();
    expect(portal.requests).toHaveLength(2);
    expect(portal.oauthForms).toEqual([]);
  });

  it('maps non-admins and expires cached answers', async () => {
    let clock = Date.now();
    const { portal, gateways } = setup({ now: () => clock });
    portal.on('profile', () => ok({ ID: 3, ADMIN: false }));
    const inst = installation();
    expect(await gateways.whoIs(inst, USER_TOKEN)).toEqual({ userId: 3, isAdmin: false });
    clock += 4 * 60_000;
    await gateways.whoIs(inst, USER_TOKEN);
    expect(portal.requests).toHaveLength(1);
    clock += 2 * 60_000;
    await gateways.whoIs(inst, USER_TOKEN);
    expect(portal.requests).toHaveLength(2);
  });

  it('keys the cache by portal too', async () => {
    const { portal, gateways } = setup();
    portal.on('profile', () => ok({ ID: '9', ADMIN: false }));
    await gateways.whoIs(installation(), USER_TOKEN);
    await gateways.whoIs(installation({ id: 8, memberId: 'member-other' }), USER_TOKEN);
    expect(portal.requests).toHaveLength(2);
  });

  it('a portal failure is an AppError, not a refusal', async () => {
    const { portal, gateways } = setup();
    portal.on('profile', () => fail(500, 'INTERNAL_SERVER_ERROR', 'boom'));
    await expect(gateways.whoIs(installation(), USER_TOKEN)).rejects.toMatchObject({ name: 'AppError', code: 'portal_unavailable' });
  });
});
