/**
 * The sandbox's REST/OAuth wire: paths, body kinds, envelope, errors, CORS, the leaky bucket,
 * token refresh with rotation through the SDK, and persistence.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AjaxError } from '@bitrix24/b24jssdk';
import { createPortal } from '../../sandbox/portal.js';
import { CLIENT_ID, CLIENT_SECRET, sdkResult, startSandbox, type Sandbox } from './harness.js';

let sb: Sandbox | null = null;
afterEach(async () => {
  await sb?.close();
  sb = null;
});

const TIME_KEYS = ['start', 'finish', 'duration', 'processing', 'date_start', 'date_finish', 'operating_reset_at', 'operating'];

describe('paths, bodies and the envelope', () => {
  it('answers /rest/m, /rest//m and /rest/m.json with JSON, form and query bodies', async () => {
    sb = await startSandbox();
    const token = sb.token();
    const json = await fetch(`${sb.base}/rest//profile`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ auth: token }),
    });
    expect(json.status).toBe(200);
    const body = (await json.json()) as { result: Record<string, unknown>; time: Record<string, unknown> };
    expect(body.result).toMatchObject({ ID: '1', ADMIN: true, NAME: 'Анна', LAST_NAME: 'Администратор' });
    expect(Object.keys(body.time).sort()).toEqual([...TIME_KEYS].sort());
    expect(body.time.date_start).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:00$/);

    const form = await fetch(`${sb.base}/rest/crm.deal.add.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `auth=${token}&fields[TITLE]=${encodeURIComponent('Форма')}&fields[OPPORTUNITY]=1500`,
    });
    const added = (await form.json()) as { result: number };
    expect(form.status).toBe(200);
    expect(added.result).toBe(1);

    const get = await fetch(`${sb.base}/rest/crm.deal.get?auth=${token}&id=1`);
    const deal = (await get.json()) as { result: Record<string, unknown> };
    expect(deal.result).toMatchObject({ ID: '1', TITLE: 'Форма', OPPORTUNITY: '1500.00', STAGE_ID: 'NEW', CURRENCY_ID: 'RUB' });

    // query + body merge: auth in the query, params in the form body
    const mixed = await fetch(`${sb.base}/rest/crm.deal.list?auth=${token}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'filter[>OPPORTUNITY]=1000&select[]=ID&select[]=TITLE',
    });
    const list = (await mixed.json()) as { result: Record<string, unknown>[]; total: number };
    expect(list.result).toEqual([{ ID: '1', TITLE: 'Форма' }]);
    expect(list.total).toBe(1);
  });

  it('refuses missing, garbage and expired tokens and unknown methods with Bitrix codes', async () => {
    sb = await startSandbox();
    const none = await fetch(`${sb.base}/rest/profile`, { method: 'POST' });
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: 'NO_AUTH_FOUND', error_description: 'Wrong authorization data' });
    const garbage = await fetch(`${sb.base}/rest/profile?auth=nope`);
    expect(garbage.status).toBe(401);
    const token = sb.token();
    sb.portal.expireAccessToken(token);
    const expired = await fetch(`${sb.base}/rest/profile?auth=${token}`);
    expect(expired.status).toBe(401);
    expect(await expired.json()).toEqual({ error: 'expired_token', error_description: 'The access token provided has expired.' });
    const unknown = await sb.call('no.such.method');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe('ERROR_METHOD_NOT_FOUND');
    const missing = await sb.call('crm.deal.get', { id: 999 });
    expect(missing).toEqual({ status: 400, body: { error: '', error_description: 'Not found' } });
    const bad = await sb.call('crm.deal.get', { id: 'x' });
    expect(bad.body).toEqual({ error: '', error_description: 'ID is not defined or invalid.' });
  });

  it('the SDK throws AjaxError ERR_BAD_REQUEST 400 for a legacy error with an empty code', async () => {
    sb = await startSandbox();
    const b24 = sb.client();
    const err = await b24.actions.v2.call.make({ method: 'crm.deal.get', params: { id: 42 } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AjaxError);
    expect((err as AjaxError).code).toBe('ERR_BAD_REQUEST');
    expect((err as AjaxError).status).toBe(400);
  });

  it('answers CORS preflights without auth and marks every answer', async () => {
    sb = await startSandbox({ limits: { drainPerSec: 0.001, burst: 1 } });
    const pre = await fetch(`${sb.base}/rest/crm.deal.list`, {
      method: 'OPTIONS',
      headers: { origin: 'http://elsewhere.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toContain('content-type');
    // preflights do not use the bucket: the one allowed request still passes
    const real = await sb.call('profile');
    expect(real.status).toBe(200);
  });
});

describe('leaky bucket', () => {
  it('answers 503 QUERY_LIMIT_EXCEEDED over the burst; the SDK retries until the bucket drains', async () => {
    sb = await startSandbox({ limits: { drainPerSec: 20, burst: 3 } });
    const token = sb.token();
    const statuses = await Promise.all(Array.from({ length: 6 }, () => fetch(`${sb!.base}/rest/profile?auth=${token}`).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 503)).toHaveLength(3);
    const over = await fetch(`${sb.base}/rest/profile?auth=${token}`);
    expect(over.status).toBe(503);
    expect(await over.json()).toEqual({ error: 'QUERY_LIMIT_EXCEEDED', error_description: 'Too many requests' });

    // a batch counts once
    await new Promise((r) => setTimeout(r, 200));
    const batch = await sb.call('batch', { cmd: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, 'profile'])) });
    expect(batch.status).toBe(200);

    // fill the bucket again; the SDK's retry gets through once it drains
    await Promise.all(Array.from({ length: 4 }, () => fetch(`${sb!.base}/rest/profile?auth=${token}`)));
    const profile = await sdkResult<{ ID: string }>(sb.client(), 'profile');
    expect(profile.ID).toBe('1');
  });
});

describe('OAuth', () => {
  it('the SDK refreshes once on expired_token, rotation spends the old refresh token', async () => {
    sb = await startSandbox();
    const tokens = sb.portal.issueTokens(CLIENT_ID, 1);
    const b24 = sb.client(1, tokens);
    const seen: { access: string; refresh: string }[] = [];
    b24.setCallbackRefreshAuth(async ({ authData }) => {
      seen.push({ access: authData.access_token, refresh: authData.refresh_token });
    });
    sb.portal.expireAccessToken(tokens.accessToken);
    const profile = await sdkResult<{ ID: string }>(b24, 'profile');
    expect(profile.ID).toBe('1');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.access).not.toBe(tokens.accessToken);
    expect(seen[0]!.refresh).not.toBe(tokens.refreshToken);
    expect(sb.portal.authenticate(seen[0]!.access)).toEqual({ clientId: CLIENT_ID, userId: 1 });

    const again = await fetch(`${sb.base}/oauth/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: CLIENT_ID, client_secret: CLIENT_SECRET, refresh_token: tokens.refreshToken }),
    });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: string }).error).toBe('invalid_grant');

    // GET with a query works too and answers the reference shape
    const get = await fetch(
      `${sb.base}/oauth/token/?${new URLSearchParams({ grant_type: 'refresh_token', client_id: CLIENT_ID, client_secret: CLIENT_SECRET, refresh_token: seen[0]!.refresh })}`,
    );
    const pair = (await get.json()) as Record<string, unknown>;
    expect(get.status).toBe(200);
    expect(Object.keys(pair).sort()).toEqual(
      ['access_token', 'client_endpoint', 'domain', 'expires', 'expires_in', 'member_id', 'refresh_token', 'scope', 'server_endpoint', 'status', 'user_id'].sort(),
    );
    expect(pair).toMatchObject({ domain: sb.portal.domain, client_endpoint: `${sb.base}/rest/`, server_endpoint: `${sb.base}/rest/`, member_id: sb.portal.memberId, status: 'L', user_id: 1, expires_in: 3600 });
    // the access token of a spent refresh token stops working
    expect(sb.portal.authenticate(seen[0]!.access)).toBeNull();
  });

  it('refuses a wrong secret with invalid_client and other grants with unsupported_grant_type', async () => {
    sb = await startSandbox();
    const tokens = sb.portal.issueTokens(CLIENT_ID, 1);
    const post = (body: Record<string, string>): Promise<Response> =>
      fetch(`${sb!.base}/oauth/token/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body) });
    const wrong = await post({ grant_type: 'refresh_token', client_id: CLIENT_ID, client_secret: 'bad', refresh_token: tokens.refreshToken });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: string }).error).toBe('invalid_client');
    const unknown = await post({ grant_type: 'refresh_token', client_id: 'nobody', client_secret: 'x', refresh_token: tokens.refreshToken });
    expect(unknown.status).toBe(401);
    const grant = await post({ grant_type: 'authorization_code', client_id: CLIENT_ID, client_secret: CLIENT_SECRET, code: 'x' });
    expect(grant.status).toBe(400);
    expect(((await grant.json()) as { error: string }).error).toBe('unsupported_grant_type');
    // the refresh token was not spent by the failures
    const ok = await post({ grant_type: 'refresh_token', client_id: CLIENT_ID, client_secret: CLIENT_SECRET, refresh_token: tokens.refreshToken });
    expect(ok.status).toBe(200);
  });
});

describe('persistence', () => {
  it('keeps entities, user fields, bindings and tokens across close + createPortal; the configured domain wins', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sandbox-state-'));
    const file = path.join(dir, 'portal.json');
    try {
      sb = await startSandbox({ stateFile: file });
      const b24 = sb.client();
      await sdkResult(b24, 'crm.contact.userfield.add', { fields: { FIELD_NAME: 'CODE', USER_TYPE_ID: 'string' } });
      const id = await sdkResult<number>(b24, 'crm.contact.add', { fields: { NAME: 'Пётр', UF_CRM_CODE: 'ABC' } });
      await sdkResult(b24, 'event.bind', { event: 'ONCRMDEALUPDATE', handler: 'http://127.0.0.1:1/b24/events' });
      const tokens = sb.portal.issueTokens(CLIENT_ID, 2);
      const memberId = sb.portal.memberId;
      await sb.close();
      sb = null;
      expect(existsSync(file)).toBe(true);

      const again = createPortal({ stateFile: file, domain: 'renamed.test:8080' });
      expect(again.memberId).toBe(memberId);
      expect(again.domain).toBe('renamed.test:8080');
      expect(again.getEntity('contact', id)).toMatchObject({ NAME: 'Пётр', UF_CRM_CODE: 'ABC' });
      expect(again.eventBindings()).toHaveLength(1);
      expect(again.authenticate(tokens.accessToken)).toEqual({ clientId: CLIENT_ID, userId: 2 });
      expect(again.refresh(CLIENT_ID, CLIENT_SECRET, tokens.refreshToken).userId).toBe(2);
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
