import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig, type Config } from '../../../server/config.js';

const SECRET_KEY = 'k'.repeat(40);
const production = {
  B24_CLIENT_ID: 'app.5f3c2a1b.12345678',
  B24_CLIENT_SECRET: 'client-secret-value-1234567890',
  SARAFAN_SECRET_KEY: SECRET_KEY,
  APP_BASE_URL: 'https://sarafan.example.com',
  DATABASE_URL: 'postgres://sarafan:db-password-42@db.internal:5432/sarafan',
};

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('starts in sandbox mode with the documented defaults on an empty environment', () => {
    const config = loadConfig({});
    expect(config).toEqual({
      port: 3000,
      appBaseUrl: 'http://localhost:3000',
      dataDir: path.resolve('./data'),
      databaseUrl: null,
      oauthUrl: 'http://localhost:3001',
      allowInsecurePortals: true,
      role: 'all',
      logLevel: 'info',
      reconcileCron: '*/5 * * * *',
      sandboxMode: true,
      sandboxPort: 3001,
      b24ClientId: null,
      b24ClientSecret: null,
      secretKey: null,
    } satisfies Config);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('derives the default base URL from PORT', () => {
    expect(loadConfig({ PORT: '8080' }).appBaseUrl).toBe('http://localhost:8080');
  });

  it('puts the sandbox portal (and so the OAuth server) on PORT + 1 unless SANDBOX_PORT says otherwise', () => {
    expect(loadConfig({ PORT: '8080' })).toMatchObject({ sandboxPort: 8081, oauthUrl: 'http://localhost:8081' });
    expect(loadConfig({ SANDBOX_PORT: '4000' })).toMatchObject({ sandboxPort: 4000, oauthUrl: 'http://localhost:4000' });
    expect(() => loadConfig({ PORT: '4000', SANDBOX_PORT: '4000' })).toThrow(/SANDBOX_PORT: must differ from PORT/);
    expect(() => loadConfig({ SANDBOX_PORT: 'x' })).toThrow(/SANDBOX_PORT/);
  });

  it('treats blank variables as unset and trims values', () => {
    const config = loadConfig({ PORT: '', LOG_LEVEL: '  ', SARAFAN_ROLE: ' worker ', B24_CLIENT_ID: '', B24_CLIENT_SECRET: '   ' });
    expect(config.port).toBe(3000);
    expect(config.logLevel).toBe('info');
    expect(config.role).toBe('worker');
    expect(config.sandboxMode).toBe(true);
  });

  it('strips trailing slashes from URLs and resolves DATA_DIR', () => {
    const config = loadConfig({
      APP_BASE_URL: 'https://Sarafan.example.com/app//',
      B24_OAUTH_URL: 'http://localhost:3000/sandbox/oauth/',
      DATA_DIR: 'var/sarafan',
    });
    expect(config.appBaseUrl).toBe('https://sarafan.example.com/app');
    expect(config.oauthUrl).toBe('http://localhost:3000/sandbox/oauth');
    expect(config.dataDir).toBe(path.resolve('var/sarafan'));
    expect(path.isAbsolute(config.dataDir)).toBe(true);
  });

  it('reads production settings', () => {
    const config = loadConfig({ ...production, PORT: '8443', SARAFAN_ROLE: 'web', LOG_LEVEL: 'debug', B24_ALLOW_INSECURE_PORTALS: '0' });
    expect(config).toMatchObject({
      sandboxMode: false,
      b24ClientId: production.B24_CLIENT_ID,
      b24ClientSecret: production.B24_CLIENT_SECRET,
      secretKey: SECRET_KEY,
      databaseUrl: production.DATABASE_URL,
      appBaseUrl: 'https://sarafan.example.com',
      port: 8443,
      role: 'web',
      logLevel: 'debug',
      allowInsecurePortals: false,
    });
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['false', false],
    ['0', false],
  ])('reads B24_ALLOW_INSECURE_PORTALS=%s as %s', (value, expected) => {
    const production = { B24_CLIENT_ID: 'app.x', B24_CLIENT_SECRET: 'secret', SARAFAN_SECRET_KEY: SECRET_KEY };
    expect(loadConfig({ ...production, B24_ALLOW_INSECURE_PORTALS: value }).allowInsecurePortals).toBe(expected);
    // The sandbox portal lives on loopback over http: sandbox mode always allows it.
    expect(loadConfig({ B24_ALLOW_INSECURE_PORTALS: value }).allowInsecurePortals).toBe(true);
  });

  it('accepts postgresql:// as well as postgres://', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://localhost/sarafan' }).databaseUrl).toBe('postgresql://localhost/sarafan');
  });

  it.each(['0', '65536', 'abc', '1.5', '-1', '3000x'])('rejects PORT=%s', (port) => {
    const error = configError({ PORT: port });
    expect(error.message).toContain(`PORT: expected an integer 1..65535, got '${port}'`);
  });

  it('lists every bad key in one error, one line each', () => {
    const error = configError({
      PORT: 'abc',
      APP_BASE_URL: 'ftp://sarafan.example.com',
      DATABASE_URL: 'mysql://root:hunter2@db/sarafan',
      B24_OAUTH_URL: 'not a url',
      B24_ALLOW_INSECURE_PORTALS: 'yes',
      SARAFAN_ROLE: 'boss',
      LOG_LEVEL: 'loud',
      B24_CLIENT_ID: 'app.only-the-id',
    });
    const keys = error.problems.map((p) => p.key).sort();
    expect(keys).toEqual(
      [
        'APP_BASE_URL',
        'B24_ALLOW_INSECURE_PORTALS',
        'B24_CLIENT_SECRET',
        'B24_OAUTH_URL',
        'DATABASE_URL',
        'LOG_LEVEL',
        'PORT',
        'SARAFAN_ROLE',
        'SARAFAN_SECRET_KEY',
      ].sort(),
    );
    const lines = error.message.split('\n').slice(1);
    expect(lines).toHaveLength(9);
    for (const key of keys) expect(lines.filter((l) => l.trimStart().startsWith(`${key}: `))).toHaveLength(1);
    expect(error.message).toContain("APP_BASE_URL: expected an absolute http(s) URL, got 'ftp://sarafan.example.com'");
    expect(error.message).toContain("SARAFAN_ROLE: expected one of web, worker, all, got 'boss'");
    expect(error.message).toContain("LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got 'loud'");
    expect(error.message).toContain("B24_ALLOW_INSECURE_PORTALS: expected one of true, false, 1, 0, got 'yes'");
  });

  it('never prints a secret value', () => {
    const secrets = {
      B24_CLIENT_SECRET: 'super-secret-client-value',
      SARAFAN_SECRET_KEY: 'short-secret-key',
      DATABASE_URL: 'mysql://root:db-password-99@db/sarafan',
    };
    const error = configError({ ...secrets, PORT: 'nope' });
    expect(error.problems.map((p) => p.key).sort()).toEqual(['B24_CLIENT_ID', 'DATABASE_URL', 'PORT', 'SARAFAN_SECRET_KEY']);
    for (const value of [...Object.values(secrets), 'db-password-99']) expect(error.message).not.toContain(value);
    expect(error.message).toContain(`SARAFAN_SECRET_KEY: must be at least 32 characters, got ${secrets.SARAFAN_SECRET_KEY.length}`);
    expect(error.message).toContain('DATABASE_URL: expected a postgres:// or postgresql:// URL');
  });

  it('requires SARAFAN_SECRET_KEY outside sandbox mode', () => {
    const { SARAFAN_SECRET_KEY: _omitted, ...withoutKey } = production;
    const error = configError(withoutKey);
    expect(error.problems).toEqual([{ key: 'SARAFAN_SECRET_KEY', problem: expect.stringContaining('required outside sandbox mode') }]);
  });

  it('lets sandbox mode run without a secret key, and checks one when given', () => {
    expect(loadConfig({}).secretKey).toBeNull();
    expect(loadConfig({ SARAFAN_SECRET_KEY: SECRET_KEY })).toMatchObject({ sandboxMode: true, secretKey: SECRET_KEY });
    expect(configError({ SARAFAN_SECRET_KEY: 'too-short' }).problems.map((p) => p.key)).toEqual(['SARAFAN_SECRET_KEY']);
  });

  it('wants both B24 credentials or neither', () => {
    expect(configError({ B24_CLIENT_ID: 'app.x', SARAFAN_SECRET_KEY: SECRET_KEY }).problems).toEqual([
      { key: 'B24_CLIENT_SECRET', problem: 'required when B24_CLIENT_ID is set (set both or neither)' },
    ]);
    expect(configError({ B24_CLIENT_SECRET: 'x'.repeat(20), SARAFAN_SECRET_KEY: SECRET_KEY }).problems).toEqual([
      { key: 'B24_CLIENT_ID', problem: 'required when B24_CLIENT_SECRET is set (set both or neither)' },
    ]);
  });

  it('rejects base URLs with credentials, queries or fragments', () => {
    expect(configError({ APP_BASE_URL: 'https://user:pass@sarafan.example.com' }).message).not.toContain('pass');
    expect(configError({ APP_BASE_URL: 'https://sarafan.example.com/?x=1' }).problems[0]?.key).toBe('APP_BASE_URL');
    expect(configError({ APP_BASE_URL: '/relative' }).problems[0]?.key).toBe('APP_BASE_URL');
  });

  it('reads SARAFAN_RECONCILE_CRON as a node-cron schedule of 5 or 6 fields', () => {
    expect(loadConfig({ SARAFAN_RECONCILE_CRON: '*/10 * * * *' }).reconcileCron).toBe('*/10 * * * *');
    // Tests reconcile every few seconds: a 6-field schedule starts with seconds.
    expect(loadConfig({ SARAFAN_RECONCILE_CRON: ' */2  * * * * * ' }).reconcileCron).toBe('*/2 * * * * *');
    expect(loadConfig({ ...production, SARAFAN_RECONCILE_CRON: '0 * * * *' }).reconcileCron).toBe('0 * * * *');
  });

  it.each([
    ['* * *', /SARAFAN_RECONCILE_CRON: expected a node-cron schedule of 5 fields .* or 6 .*, got 3 in '\* \* \*'/],
    ['*/5 * * * * * *', /SARAFAN_RECONCILE_CRON: expected .* got 7/],
    ['@hourly', /SARAFAN_RECONCILE_CRON: expected .* got 1 in '@hourly'/],
    ['61 * * * *', /SARAFAN_RECONCILE_CRON: not a valid node-cron schedule '61 \* \* \* \*': 61 is a invalid expression for minute/],
    ['every five minutes', /SARAFAN_RECONCILE_CRON: expected .* got 3/],
  ])('rejects SARAFAN_RECONCILE_CRON=%s, naming the key', (value, message) => {
    const error = configError({ SARAFAN_RECONCILE_CRON: value, PORT: 'x' });
    expect(error.problems.map((p) => p.key).sort()).toEqual(['PORT', 'SARAFAN_RECONCILE_CRON']);
    expect(error.message).toMatch(message);
  });

  it('reads process.env by default', () => {
    vi.stubEnv('PORT', '4321');
    vi.stubEnv('APP_BASE_URL', '');
    vi.stubEnv('B24_CLIENT_ID', '');
    vi.stubEnv('B24_CLIENT_SECRET', '');
    vi.stubEnv('SARAFAN_SECRET_KEY', '');
    vi.stubEnv('DATABASE_URL', '');
    expect(loadConfig()).toMatchObject({ port: 4321, appBaseUrl: 'http://localhost:4321', sandboxMode: true });
  });
});
