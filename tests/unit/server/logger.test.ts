import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createLogger, redactSecrets, scrubSecrets, SECRET_KEYS } from '../../../server/logger.js';

const T = {
  access: 'acc3ss-t0ken-7f1c9e2d',
  refresh: 'refr3sh-t0ken-0b8a4c6e',
  application: 'app1ication-t0ken-51850e6f',
  bearer: 'b3arer-t0ken-93d1aa07',
  cookie: 'c00kie-sess10n-5e2f',
  query: 'qu3ry-t0ken-44aa',
  deep: 'd33p-t0ken-12cd',
  errorMsg: 'err0r-t0ken-77ef',
  config: 'c0nfig-t0ken-88ab',
  child: 'ch1ld-t0ken-99bc',
};
const ALL_TOKENS = Object.values(T);
const MEMBER_ID = 'a223c4b5d6e7f8091a2b3c4d5e6f7081';

function memoryLogger(level = 'trace') {
  const lines: string[] = [];
  const log = createLogger({ level, destination: { write: (s: string) => void lines.push(s) } });
  return { log, lines, output: () => lines.join('') };
}

function expectNoTokens(output: string): void {
  for (const token of ALL_TOKENS) expect(output).not.toContain(token);
}

// ONAPPINSTALL as Bitrix24 posts it (reference 1.5), after qs parsing.
const onAppInstall = {
  event: 'ONAPPINSTALL',
  event_handler_id: '1',
  data: { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'ru' },
  ts: '1736405807',
  auth: {
    domain: 'acme.bitrix24.ru',
    client_endpoint: 'https://acme.bitrix24.ru/rest/',
    server_endpoint: 'https://oauth.bitrix.info/rest/',
    member_id: MEMBER_ID,
    application_token: T.application,
    access_token: T.access,
    refresh_token: T.refresh,
    expires: '1736409407',
    expires_in: '3600',
    user_id: '1',
    scope: 'crm,placement,bizproc',
    status: 'F',
  },
};

// The install wizard's form POST (reference 1.3).
const installForm = {
  AUTH_ID: T.access,
  AUTH_EXPIRES: '3600',
  REFRESH_ID: T.refresh,
  APPLICATION_TOKEN: T.application,
  member_id: MEMBER_ID,
  SERVER_ENDPOINT: 'https://oauth.bitrix.info/rest/',
  PLACEMENT: 'DEFAULT',
};

describe('createLogger', () => {
  it('redacts a whole ONAPPINSTALL payload, wherever it is logged', () => {
    const { log, output } = memoryLogger();
    log.info(onAppInstall, 'event.received');
    log.info({ memberId: MEMBER_ID, event: onAppInstall }, 'event.received');
    log.info({ job: { payload: { body: onAppInstall } } }, 'job.enqueued');
    const out = output();
    expectNoTokens(out);
    expect(out).toContain('"event":"ONAPPINSTALL"');
    expect(out).toContain('"LANGUAGE_ID":"ru"');
    expect(out).toContain(`"memberId":"${MEMBER_ID}"`);
    expect(out).toContain('"auth":"[redacted]"');
  });

  it('redacts an install form body but keeps member_id', () => {
    const { log, lines, output } = memoryLogger();
    log.info(installForm, 'install.started');
    log.info({ body: installForm }, 'install.started');
    const out = output();
    expectNoTokens(out);
    for (const line of lines) {
      expect(line).toContain(`"member_id":"${MEMBER_ID}"`);
      expect(line).toContain('"PLACEMENT":"DEFAULT"');
    }
    expect(JSON.parse(lines[1]!).body).toMatchObject({ AUTH_ID: '[redacted]', REFRESH_ID: '[redacted]', APPLICATION_TOKEN: '[redacted]' });
  });

  it('redacts the Authorization and Cookie headers and tokens in the URL of a logged request', async () => {
    const { log, output } = memoryLogger();
    const app = express();
    app.get('/api/program', (req, res) => {
      log.info({ req }, 'http.request');
      res.json({});
    });
    await request(app)
      .get(`/api/program?access_token=${T.query}&member_id=${MEMBER_ID}`)
      .set('Authorization', `Bearer ${T.bearer}`)
      .set('Cookie', `sid=${T.cookie}`)
      .set('X-Sarafan-Portal', MEMBER_ID)
      .expect(200);
    const out = output();
    expectNoTokens(out);
    const entry = JSON.parse(out.trim()) as { req: { method: string; url: string; headers: Record<string, string> } };
    expect(entry.req.method).toBe('GET');
    expect(entry.req.url).toContain(`member_id=${MEMBER_ID}`);
    expect(entry.req.headers.authorization).toBe('[redacted]');
    expect(entry.req.headers.cookie).toBe('[redacted]');
    expect(entry.req.headers['x-sarafan-portal']).toBe(MEMBER_ID);
  });

  it('redacts secret keys at any depth, in arrays, and in child bindings', () => {
    const { log, output } = memoryLogger();
    log.info({ a: { b: { c: { d: { e: { f: { g: { access_token: T.deep } } } } } } } }, 'deep');
    log.info({ batch: [{ tokens: { accessToken: T.deep, refreshToken: T.refresh } }] }, 'batch');
    log.child({ portal: { memberId: MEMBER_ID, applicationToken: T.child } }).info({}, 'child');
    const out = output();
    expectNoTokens(out);
    expect(out).toContain(MEMBER_ID);
  });

  it('masks secrets in error messages, stacks, causes and messages, and drops HTTP client internals', () => {
    const { log, output } = memoryLogger();
    const transport = Object.assign(new Error(`Request failed: POST /oauth/token/?refresh_token=${T.errorMsg}`), {
      code: 'ERR_BAD_REQUEST',
      config: { data: JSON.stringify({ auth: T.config }) },
    });
    const err = new Error(`portal call failed: auth[access_token]=${T.access}`, { cause: transport });
    log.error({ err, memberId: MEMBER_ID }, 'portal.call_failed');
    log.error(new Error(`Bearer ${T.bearer}`));
    log.warn(`library said access_token=${T.query}`);
    const out = output();
    expectNoTokens(out);
    expect(out).toContain('ERR_BAD_REQUEST');
    expect(out).toContain('portal call failed');
    expect(out).toContain('"stack"');
  });

  it('never mutates the logged objects', () => {
    const { log } = memoryLogger();
    const payload = structuredClone(onAppInstall);
    log.info({ payload }, 'event.received');
    expect(payload).toEqual(onAppInstall);
  });

  it('respects the level', () => {
    const { log, lines } = memoryLogger('warn');
    log.info({}, 'ignored');
    log.warn({}, 'kept');
    expect(lines).toHaveLength(1);
  });
});

describe('SECRET_KEYS', () => {
  it('covers every place a Bitrix24 or HTTP secret appears', () => {
    for (const key of [
      'access_token',
      'refresh_token',
      'application_token',
      'AUTH_ID',
      'REFRESH_ID',
      'APPLICATION_TOKEN',
      'client_secret',
      'authorization',
      'cookie',
      'auth',
      'secretKey',
      'password',
      'token',
      'tokens',
    ]) {
      expect(SECRET_KEYS).toContain(key);
    }
  });
});

describe('redactSecrets', () => {
  it('censors keys case-insensitively and shares untouched branches', () => {
    const untouched = { DEAL_ID: '5' };
    const input = { Authorization: 'Bearer x', data: untouched, list: [1, 'two'] };
    const out = redactSecrets(input) as typeof input;
    expect(out.Authorization).toBe('[redacted]');
    expect(out.data).toBe(untouched);
    expect(input.Authorization).toBe('Bearer x');
  });

  it('survives cycles', () => {
    const a: Record<string, unknown> = { token: 'x' };
    a.self = a;
    expect(redactSecrets(a)).toEqual({ token: '[redacted]', self: '[Circular]' });
  });
});

describe('scrubSecrets', () => {
  it.each([
    [`event=ONCRMDEALUPDATE&auth[access_token]=${T.access}&auth[member_id]=${MEMBER_ID}`, `auth[member_id]=${MEMBER_ID}`],
    [`auth%5Brefresh_token%5D=${T.refresh}&ts=1`, '&ts=1'],
    [`auth[application_token]=${T.application}`, 'auth[application_token]=[redacted]'],
    [`access_token=${T.access}&expires_in=3600`, 'expires_in=3600'],
    [`refresh_token=${T.refresh}`, 'refresh_token=[redacted]'],
    [`AUTH_ID=${T.access}&REFRESH_ID=${T.refresh}&member_id=${MEMBER_ID}`, `member_id=${MEMBER_ID}`],
    [`Authorization: Bearer ${T.bearer}`, 'Authorization: Bearer [redacted]'],
    [`{"access_token":"${T.access}","member_id":"${MEMBER_ID}"}`, `"member_id":"${MEMBER_ID}"`],
    [`{ refresh_token: '${T.refresh}', domain: 'acme.bitrix24.ru' }`, "domain: 'acme.bitrix24.ru'"],
    [`client_secret=${T.config}&grant_type=refresh_token`, 'grant_type=refresh_token'],
    [`connect to postgres://sarafan:${T.config}@db:5432/sarafan failed`, 'postgres://sarafan:[redacted]@db:5432/sarafan'],
  ])('masks %s', (text, kept) => {
    const out = scrubSecrets(text);
    expectNoTokens(out);
    expect(out).toContain(kept);
  });

  it('leaves ordinary text alone', () => {
    const text = 'crm.deal.get: Not found (deal 759, member a223)';
    expect(scrubSecrets(text)).toBe(text);
  });
});
