import { http, HttpResponse, delay } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOAuthServer } from '../../../src/bitrix/oauth-server.js';
import { AppError } from '../../../src/handlers/errors.js';

const OAUTH = 'https://oauth.example.test';
const TOKEN_URL = `${OAUTH}/oauth/token/`;
const REFRESH = 'refresh-token-0123456789abcdef0123456789abcdef';
const SECRET = 'client-secret-value-xyz';
const NOW = Date.parse('2025-03-01T10:00:00.000Z');

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

const oauth = (over: Partial<Parameters<typeof createOAuthServer>[0]> = {}) =>
  createOAuthServer({ oauthUrl: OAUTH, clientId: 'app.client', clientSecret: SECRET, allowInsecure: false, now: () => NOW, timeoutMs: 2000, ...over });

const grant = {
  access_token: 'access-new',
  refresh_token: 'refresh-new',
  client_endpoint: 'https://acme.bitrix24.ru/rest/',
  domain: 'oauth.bitrix.info',
  expires: String(NOW / 1000 + 3600),
  expires_in: '3600',
  member_id: 'member-1',
  scope: 'crm,placement',
  server_endpoint: 'https://oauth.bitrix.info/rest/',
  status: 'F',
  user_id: '67',
};

async function failure(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    const err = e as AppError;
    expect(err.message).not.toContain(REFRESH);
    expect(err.message).not.toContain(SECRET);
    expect(JSON.stringify(err.details)).not.toContain(REFRESH);
    return err;
  }
  throw new Error('expected a failure');
}

describe('createOAuthServer.refresh', () => {
  it('posts the refresh form to B24_OAUTH_URL and maps the grant', async () => {
    const seen: { url: string; type: string | null; form: Record<string, string> }[] = [];
    server.use(
      http.post(TOKEN_URL, async ({ request }) => {
        seen.push({ url: request.url, type: request.headers.get('content-type'), form: Object.fromEntries(new URLSearchParams(await request.text())) });
        return HttpResponse.json(grant);
      }),
    );
    const result = await oauth().refresh(REFRESH);
    expect(seen).toEqual([
      {
        url: TOKEN_URL,
        type: expect.stringContaining('application/x-www-form-urlencoded'),
        form: { grant_type: 'refresh_token', client_id: 'app.client', client_secret: SECRET, refresh_token: REFRESH },
      },
    ]);
    expect(result).toEqual({
      accessToken: 'access-new',
      refreshToken: 'refresh-new',
      expiresAt: new Date(NOW + 3600_000),
      memberId: 'member-1',
      clientEndpoint: 'https://acme.bitrix24.ru/rest/',
      serverEndpoint: 'https://oauth.bitrix.info/rest/',
      scope: 'crm,placement',
      userId: 67,
      status: 'F',
    });
  });

  it('takes expiresAt from expires_in when expires is missing or past', async () => {
    server.use(http.post(TOKEN_URL, () => HttpResponse.json({ ...grant, expires: undefined, expires_in: 1800, user_id: undefined })));
    const r = await oauth().refresh(REFRESH);
    expect(r.expiresAt).toEqual(new Date(NOW + 1800_000));
    expect(r.userId).toBeNull();

    server.use(http.post(TOKEN_URL, () => HttpResponse.json({ ...grant, expires: NOW / 1000 - 10, expires_in: 3600 })));
    expect((await oauth().refresh(REFRESH)).expiresAt).toEqual(new Date(NOW + 3600_000));
  });

  it('invalid_grant → install_unverified naming the code, never the token', async () => {
    server.use(http.post(TOKEN_URL, () => HttpResponse.json({ error: 'invalid_grant', error_description: `refresh token ${REFRESH} is invalid` }, { status: 400 })));
    const err = await failure(oauth().refresh(REFRESH));
    expect(err.code).toBe('install_unverified');
    expect(err.message).toBe('The OAuth server did not confirm the install: invalid_grant');
  });

  it('an error in a 200 body → install_unverified', async () => {
    server.use(http.post(TOKEN_URL, () => HttpResponse.json({ error: 'PAYMENT_REQUIRED', error_description: 'Trial is over' })));
    const err = await failure(oauth().refresh(REFRESH));
    expect(err.code).toBe('install_unverified');
    expect(err.message).toContain('PAYMENT_REQUIRED');
  });

  it('an error code echoing the token is not repeated', async () => {
    server.use(http.post(TOKEN_URL, () => HttpResponse.json({ error: REFRESH }, { status: 401 })));
    const err = await failure(oauth().refresh(REFRESH));
    expect(err.code).toBe('install_unverified');
    expect(err.message).toContain('unknown_error');
  });

  it('5xx, network errors, timeouts and unusable answers → portal_unavailable', async () => {
    server.use(http.post(TOKEN_URL, () => HttpResponse.json({ error: 'internal' }, { status: 500 })));
    expect((await failure(oauth().refresh(REFRESH))).code).toBe('portal_unavailable');

    server.use(http.post(TOKEN_URL, () => HttpResponse.error()));
    expect((await failure(oauth().refresh(REFRESH))).code).toBe('portal_unavailable');

    server.use(
      http.post(TOKEN_URL, async () => {
        await delay(500);
        return HttpResponse.json(grant);
      }),
    );
    const slow = await failure(oauth({ timeoutMs: 50 }).refresh(REFRESH));
    expect(slow.code).toBe('portal_unavailable');
    expect(slow.message).toMatch(/in time/);

    server.use(http.post(TOKEN_URL, () => HttpResponse.text('<html>maintenance</html>')));
    expect((await failure(oauth().refresh(REFRESH))).code).toBe('portal_unavailable');

    server.use(http.post(TOKEN_URL, () => new HttpResponse(null, { status: 302, headers: { Location: 'https://elsewhere.example.test/' } })));
    expect((await failure(oauth().refresh(REFRESH))).code).toBe('portal_unavailable');
  });

  it('the timeout covers the answer’s body: a body that never ends fails the refresh in time', async () => {
    // Node's fetch can leave response.text() pending forever when aborted mid-body (nodejs/node#56917).
    let sent = 0;
    const endlessBody = (async () => {
      sent++;
      return { status: 200, text: () => new Promise<string>(() => {}) } as unknown as Response;
    }) as typeof fetch;
    const err = await failure(oauth({ timeoutMs: 20, fetchImpl: endlessBody }).refresh(REFRESH));
    expect(sent).toBe(1);
    expect(err.code).toBe('portal_unavailable');
    expect(err.message).toMatch(/in time/);
  });

  it('refuses a non-public client endpoint unless allowInsecure', async () => {
    server.use(http.post(TOKEN_URL, () => HttpResponse.json({ ...grant, client_endpoint: 'http://127.0.0.1:3000/rest/' })));
    expect((await failure(oauth().refresh(REFRESH))).code).toBe('insecure_portal');
    expect((await oauth({ allowInsecure: true }).refresh(REFRESH)).clientEndpoint).toBe('http://127.0.0.1:3000/rest/');
  });

  it('requires an https OAuth URL unless allowInsecure', () => {
    expect(() => oauth({ oauthUrl: 'http://oauth.example.test' })).toThrow(AppError);
    expect(() => oauth({ oauthUrl: 'http://localhost:3000', allowInsecure: true })).not.toThrow();
  });
});
