/**
 * The sandbox's REST/OAuth wire: paths, body kinds, envelope, errors, CORS, the leaky bucket,
 * token lifetimes, token refresh with rotation through the SDK, and persistence. Whatever depends
 * on time runs on a ManualClock the test advances, never on the speed of the machine.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AjaxError } from '@bitrix24/b24jssdk';
import { createPortal } from '../../sandbox/portal.js';
import { ManualClock } from '../support/manual-clock.js';
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
    sb = await startSandbox({ limits: { drainPerSec: 2, burst: 1 }, clock: new ManualClock() });
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

describe('leaky bucket (on a clock the test moves)', () => {
  const profile = (token: string) => fetch(`${sb!.base}/rest/profile?auth=${token}`);

  it('admits the burst of 50, answers the 51st 503 QUERY_LIMIT_EXCEEDED, and one more every 500 ms at 2/s', async () => {
    const clock = new ManualClock();
    sb = await startSandbox({ limits: { drainPerSec: 2, burst: 50 }, clock });
    const token = sb.token();
    const burst = await Promise.all(Array.from({ length: 50 }, () => profile(token).then((r) => r.status)));
    expect(burst).toEqual(Array(50).fill(200));
    const over = await profile(token);
    expect(over.status).toBe(503);
    expect(await over.json()).toEqual({ error: 'QUERY_LIMIT_EXCEEDED', error_description: 'Too many requests' });

    await clock.advance(499);
    expect((await profile(token)).status).toBe(503);
    await clock.advance(1);
    expect((await profile(token)).status).toBe(200);
    expect((await profile(token)).status).toBe(503);
    expect(sb.stats).toMatchObject({ requests: 51, throttled: 3 });

    // Drained for good after 25 s: the whole burst again.
    await clock.advance(25_000);
    expect(await Promise.all(Array.from({ length: 51 }, () => profile(token).then((r) => r.status)))).toEqual([...Array(50).fill(200), 503]);
  });

  it('of concurrent requests over the burst exactly the burst passes; a batch counts once', async () => {
    const clock = new ManualClock();
    sb = await startSandbox({ limits: { drainPerSec: 20, burst: 3 }, clock });
    const token = sb.token();
    const statuses = await Promise.all(Array.from({ length: 6 }, () => profile(token).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 503)).toHaveLength(3);

    await clock.advance(1_000);
    const batch = await sb.call('batch', { cmd: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, 'profile'])) });
    expect(batch.status).toBe(200);
    expect(Object.keys((batch.body.result as { result: Record<string, unknown> }).result)).toHaveLength(10);
    expect((await profile(token)).status).toBe(200);
    expect((await profile(token)).status).toBe(200);
    expect((await profile(token)).status).toBe(503);
  });

  it('the SDK retries a 503 and gets through once the bucket has drained', async () => {
    const clock = new ManualClock();
    sb = await startSandbox({ limits: { drainPerSec: 2, burst: 3 }, clock });
    const token = sb.token();
    await Promise.all(Array.from({ length: 3 }, () => profile(token)));
    const throttled = sb.answered(503);
    const call = sdkResult<{ ID: string }>(sb.client(), 'profile');
    await throttled;
    // The SDK waits (on its own timer) before it retries; by then the bucket has room for one.
    await clock.advance(500);
    expect((await call).ID).toBe('1');
    expect(sb.stats).toMatchObject({ requests: 4, throttled: 1 });
  });
});

describe('token lifetimes (on a clock the test moves)', () => {
  const refresh = (refreshToken: string) =>
    fetch(`${sb!.base}/oauth/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: CLIENT_ID, client_secret: CLIENT_SECRET, refresh_token: refreshToken }),
    });

  it('an access token works until its lifetime is over, then answers 401 expired_token; a refresh starts a new lifetime', async () => {
    const clock = new ManualClock();
    sb = await startSandbox({ clock, tokenLifetimeSec: 60 });
    const pair = sb.portal.issueTokens(CLIENT_ID, 1);
    expect(pair).toMatchObject({ expires: Math.floor(clock.now() / 1000) + 60, expiresIn: 60 });
    await clock.advance(59_999);
    expect((await fetch(`${sb.base}/rest/profile?auth=${pair.accessToken}`)).status).toBe(200);
    await clock.advance(1);
    const expired = await fetch(`${sb.base}/rest/profile?auth=${pair.accessToken}`);
    expect(expired.status).toBe(401);
    expect(await expired.json()).toEqual({ error: 'expired_token', error_description: 'The access token provided has expired.' });

    const renewed = await refresh(pair.refreshToken);
    expect(renewed.status).toBe(200);
    const fresh = (await renewed.json()) as { access_token: string; expires: number; expires_in: number };
    expect(fresh).toMatchObject({ expires: Math.floor(clock.now() / 1000) + 60, expires_in: 60 });
    await clock.advance(59_999);
    expect((await fetch(`${sb.base}/rest/profile?auth=${fresh.access_token}`)).status).toBe(200);
    await clock.advance(1);
    expect((await fetch(`${sb.base}/rest/profile?auth=${fresh.access_token}`)).status).toBe(401);
  });

  it('a refresh token is good for 180 days', async () => {
    const clock = new ManualClock();
    sb = await startSandbox({ clock });
    const early = sb.portal.issueTokens(CLIENT_ID, 1);
    const late = sb.portal.issueTokens(CLIENT_ID, 1);
    await clock.advance(180 * 86_400_000 - 1);
    expect((await refresh(early.refreshToken)).status).toBe(200);
    await clock.advance(1);
    const spent = await refresh(late.refreshToken);
    expect(spent.status).toBe(400);
    expect(((await spent.json()) as { error: string }).error).toBe('invalid_grant');
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
  it('writes the state 100 ms (on its clock) after a change, once for many changes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sandbox-state-'));
    const file = path.join(dir, 'portal.json');
    const clock = new ManualClock();
    const portal = createPortal({ stateFile: file, domain: 'debounce.test', clock });
    try {
      await clock.advance(99);
      expect(existsSync(file)).toBe(false);
      await clock.advance(1);
      expect(existsSync(file)).toBe(true);
      const saved = () => JSON.parse(readFileSync(file, 'utf8')) as { entities: { contact: { rows: Record<string, unknown> } } };
      const first = portal.addEntity('contact', { NAME: 'Ирина' }, { userId: 1 });
      const second = portal.addEntity('contact', { NAME: 'Олег' }, { userId: 1 });
      expect(clock.pending).toBe(1);
      await clock.advance(99);
      expect(Object.keys(saved().entities.contact.rows)).toEqual([]);
      await clock.advance(1);
      expect(Object.keys(saved().entities.contact.rows)).toEqual([String(first), String(second)]);
      expect(clock.pending).toBe(0);
    } finally {
      portal.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

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
