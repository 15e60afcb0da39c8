/**
 * `npm run sandbox`: the sandbox portal alone, for pointing an app (e.g. another Sarafan
 * instance) at it, as one would register a local application on a Bitrix24 portal. Its own small
 * environment, parsed once here:
 *
 * | variable | default | meaning |
 * | SANDBOX_PORT | 3001 | where the portal listens |
 * | SANDBOX_HOST | localhost | the portal's domain name (and listening address) |
 * | SANDBOX_APP_HANDLER_URL | unset = no app | the local app's handler URL (its main page and tabs) |
 * | SANDBOX_APP_INSTALL_URL | the handler URL | the app's initial installation path |
 * | SANDBOX_APP_SCOPE | crm | the app's permissions, comma-separated |
 * | SANDBOX_APP_TITLE | Приложение | the app's name on the Applications page |
 * | SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET | local.sandbox.app, sandbox-app-secret | that app's keys |
 * | SANDBOX_RATE_LIMIT | 2/50 | leaky bucket drain per second / burst, or `off` |
 * | SANDBOX_TOKEN_LIFETIME | 3600 | access token lifetime, seconds |
 * | DATA_DIR | ./data | state is kept in DATA_DIR/sandbox/portal.json |
 */
import path from 'node:path';
import { z } from 'zod';
import { startSandbox, type AppSpec } from './server.js';

const httpUrl = z.url({ protocol: /^https?$/ });

const Env = z.object({
  SANDBOX_PORT: z.coerce.number().int().min(1).max(65535).default(3001),
  SANDBOX_HOST: z.string().regex(/^[a-z0-9.-]+$/i, 'a host name such as localhost').default('localhost'),
  SANDBOX_APP_HANDLER_URL: httpUrl.optional(),
  SANDBOX_APP_INSTALL_URL: httpUrl.optional(),
  SANDBOX_APP_SCOPE: z.string().regex(/^[a-z_]+(,[a-z_]+)*$/, 'comma-separated scopes, e.g. crm,placement').default('crm'),
  SANDBOX_APP_TITLE: z.string().min(1).default('Приложение'),
  SANDBOX_CLIENT_ID: z.string().min(1).default('local.sandbox.app'),
  SANDBOX_CLIENT_SECRET: z.string().min(1).default('sandbox-app-secret'),
  SANDBOX_RATE_LIMIT: z
    .string()
    .regex(/^(off|\d+(\.\d+)?\/\d+)$/, 'expected <drain per second>/<burst>, e.g. 2/50, or off')
    .default('2/50'),
  SANDBOX_TOKEN_LIFETIME: z.coerce.number().int().min(5).default(3600),
  DATA_DIR: z.string().min(1).default('./data'),
});

async function main(): Promise<void> {
  const parsed = Env.safeParse(Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v.trim() !== '')));
  if (!parsed.success) {
    console.error(`Invalid environment:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
    process.exit(1);
  }
  const env = parsed.data;
  const [drain, burst] = env.SANDBOX_RATE_LIMIT.split('/').map(Number);
  const sandbox = await startSandbox({
    port: env.SANDBOX_PORT,
    host: env.SANDBOX_HOST,
    dataDir: path.resolve(env.DATA_DIR, 'sandbox'),
    limits: env.SANDBOX_RATE_LIMIT === 'off' ? false : { drainPerSec: drain!, burst: burst! },
    tokenLifetimeSec: env.SANDBOX_TOKEN_LIFETIME,
    apps: env.SANDBOX_APP_HANDLER_URL ? [localApp(env, env.SANDBOX_APP_HANDLER_URL)] : [],
    log: (msg, extra) => console.error(msg, extra ?? ''),
  });
  console.error(`Sandbox portal: ${sandbox.url}/  (OAuth server: ${sandbox.url}/oauth/token/, REST: ${sandbox.url}/rest/)`);
  const stop = async (): Promise<void> => {
    await sandbox.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

function localApp(env: z.infer<typeof Env>, handlerUrl: string): AppSpec {
  return {
    clientId: env.SANDBOX_CLIENT_ID,
    clientSecret: env.SANDBOX_CLIENT_SECRET,
    code: env.SANDBOX_CLIENT_ID.replace(/^local\./, ''),
    title: env.SANDBOX_APP_TITLE,
    version: '1',
    scope: env.SANDBOX_APP_SCOPE,
    handlerUrl,
    installUrl: env.SANDBOX_APP_INSTALL_URL ?? handlerUrl,
  };
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
