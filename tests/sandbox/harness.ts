/**
 * Starts the sandbox REST + OAuth routers on an ephemeral port and builds SDK clients
 * (B24OAuth, the client Sarafan uses) and raw fetch helpers against it.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { B24OAuth, ParamsFactory } from '@bitrix24/b24jssdk';
import { createPortal, type SandboxPortal } from '../../sandbox/portal.js';
import type { SandboxClock } from '../../sandbox/clock.js';
import { restRoutes, type RestStats } from '../../sandbox/rest/index.js';
import { oauthRoutes } from '../../sandbox/oauth.js';

export const CLIENT_ID = 'local.sandbox.test';
export const CLIENT_SECRET = 'sandbox-test-secret';

export interface Sandbox {
  port: number;
  base: string;
  portal: SandboxPortal;
  /** REST requests admitted and refused by the leaky bucket. */
  stats: RestStats;
  /** Resolves when the sandbox has answered a request with this status (its handler has just sent it). */
  answered(status: number): Promise<void>;
  /** A B24OAuth client for a fresh token pair of `userId`. */
  client(userId?: number, tokens?: { accessToken: string; refreshToken: string; expires: number }): B24OAuth;
  token(userId?: number): string;
  /** POST JSON to /rest/<method> (auth added unless given). */
  call(method: string, params?: Record<string, unknown>, userId?: number): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startSandbox(
  opts: { limits?: { drainPerSec: number; burst: number } | false; stateFile?: string | null; tokenLifetimeSec?: number; clock?: SandboxClock } = {},
): Promise<Sandbox> {
  const app = express();
  const waiting: { status: number; resolve: () => void }[] = [];
  app.use((_req, res, next) => {
    res.on('finish', () => {
      for (const w of waiting.filter((x) => x.status === res.statusCode)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
    });
    next();
  });
  let inner: ((req: Request, res: Response, next: NextFunction) => void) | null = null;
  app.use((req, res, next) => (inner ? inner(req, res, next) : next()));
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  const portal = createPortal({
    stateFile: opts.stateFile ?? null,
    domain: `127.0.0.1:${port}`,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.tokenLifetimeSec ? { tokenLifetimeSec: opts.tokenLifetimeSec } : {}),
  });
  portal.upsertApp({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    code: 'sarafan',
    title: 'Sarafan',
    version: '1',
    scope: 'crm,placement,bizproc,im,user_brief',
    handlerUrl: `http://127.0.0.1:${port}/b24/app`,
    installUrl: `http://127.0.0.1:${port}/b24/install`,
  });
  portal.setAppInstalled(CLIENT_ID, true);
  const router = express.Router();
  const stats: RestStats = { requests: 0, throttled: 0, commands: 0, byMethod: {} };
  router.use(restRoutes(portal, { limits: opts.limits ?? false, stats }));
  router.use(oauthRoutes(portal));
  inner = router;
  const base = `http://127.0.0.1:${port}`;

  const sandbox: Sandbox = {
    port,
    base,
    portal,
    stats,
    answered: (status) => new Promise<void>((resolve) => waiting.push({ status, resolve })),
    token: (userId = 1) => portal.issueTokens(CLIENT_ID, userId).accessToken,
    client(userId = 1, tokens) {
      const t = tokens ?? portal.issueTokens(CLIENT_ID, userId);
      const b24 = new B24OAuth(
        {
          applicationToken: '',
          userId,
          memberId: portal.memberId,
          accessToken: t.accessToken,
          refreshToken: t.refreshToken,
          expires: t.expires,
          expiresIn: 3600,
          scope: 'crm,placement,bizproc,im,user_brief',
          domain: portal.domain,
          clientEndpoint: `${base}/rest/`,
          serverEndpoint: `${base}/rest/`,
          status: 'L',
        } as ConstructorParameters<typeof B24OAuth>[0],
        { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
        // The SDK's own limiter mirrors a standard portal (burst 50); tests make more calls.
        { restrictionParams: ParamsFactory.getEnterprise() },
      );
      b24.offClientSideWarning();
      return b24;
    },
    async call(method, params = {}, userId = 1) {
      const body = { auth: sandbox.token(userId), ...params };
      const res = await fetch(`${base}/rest/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async close() {
      portal.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return sandbox;
}

/** The `result` of a successful SDK call (throws the SDK's error otherwise). */
export async function sdkResult<T = unknown>(b24: B24OAuth, method: string, params: Record<string, unknown> = {}): Promise<T> {
  const res = await b24.actions.v2.call.make({ method, params });
  if (!res.isSuccess) throw new Error(res.getErrorMessages().join('; '));
  return (res.getData() as { result: T }).result;
}
