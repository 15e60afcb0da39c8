/**
 * `npm run sandbox`: the sandbox portal alone, for pointing another Sarafan instance at it (or
 * any Bitrix24 app). Its own small environment, parsed once here:
 *
 * | variable | default | meaning |
 * | SANDBOX_PORT | 3001 | where the portal listens |
 * | SANDBOX_HOST | localhost | the portal's domain name (and listening address) |
 * | SANDBOX_APP_URL | http://localhost:3000 | the Sarafan instance it offers to install (install URL /b24/install, pages /b24/frame) |
 * | SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET | local.sarafan.sandbox, sarafan-sandbox-secret | that app's keys |
 * | SANDBOX_RATE_LIMIT | 2/50 | leaky bucket drain per second / burst, or `off` |
 * | SANDBOX_TOKEN_LIFETIME | 3600 | access token lifetime, seconds |
 * | DATA_DIR | ./data | state is kept in DATA_DIR/sandbox/portal.json |
 */
import path from 'node:path';
import { z } from 'zod';
import { SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, sarafanApp } from './apps.js';
import { startSandbox } from './server.js';

const Env = z.object({
  SANDBOX_PORT: z.coerce.number().int().min(1).max(65535).default(3001),
  SANDBOX_HOST: z.string().regex(/^[a-z0-9.-]+$/i, 'a host name such as localhost').default('localhost'),
  SANDBOX_APP_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:3000'),
  SANDBOX_CLIENT_ID: z.string().min(1).default(SANDBOX_CLIENT_ID),
  SANDBOX_CLIENT_SECRET: z.string().min(1).default(SANDBOX_CLIENT_SECRET),
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
    apps: [sarafanApp(env.SANDBOX_APP_URL, { clientId: env.SANDBOX_CLIENT_ID, clientSecret: env.SANDBOX_CLIENT_SECRET })],
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

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
