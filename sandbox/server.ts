/**
 * The sandbox portal as one HTTP server: REST (`/rest/…`), the OAuth server (`/oauth/token/`),
 * the web CRM, and a control API for tests (`/_sandbox/control/…`, loopback only). Its domain
 * is `host:port`, known once it listens, so the routes are mounted after `listen`.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { realClock, type SandboxClock } from './clock.js';
import { Outbound, type Faults } from './outbound.js';
import { oauthRoutes } from './oauth.js';
import { createPortal, type SandboxPortal } from './portal.js';
import { restRoutes, type RestOptions, type RestStats } from './rest/index.js';
import type { EntityKind, SandboxApp } from './types.js';
import { webRoutes, type WebSettings } from './web/routes.js';

export type AppSpec = Omit<SandboxApp, 'applicationToken' | 'installed'>;
export type { WebSettings };

export interface SandboxOptions {
  /** 0 = any free port. */
  port: number;
  /** The name the portal is reached by (its DOMAIN); default 127.0.0.1. */
  host?: string;
  /** The address to listen on; default the host itself, except `localhost`, which listens on every address (IPv4 and IPv6 clients alike). */
  bind?: string;
  /**
   * An HTTP server already listening, to serve the portal on instead of listening on `port`: a
   * test that must know the portal's address before it composes the app the portal talks to
   * listens first, with no gap between finding a free port and taking it. The server stays the
   * caller's: close() stops serving on it, and the caller closes it.
   */
  server?: Server;
  /** Where the portal's state is kept (`<dataDir>/portal.json`); null = memory only. */
  dataDir: string | null;
  /** The leaky bucket (reference §3.5); false = off. Default 2/s, burst 50. */
  limits?: { drainPerSec: number; burst: number } | false;
  tokenLifetimeSec?: number;
  /** Applications the portal knows, installable from the Applications page (a local app's keys and URLs). */
  apps?: AppSpec[];
  /** The web CRM's list columns and home-page guide, as a portal admin would set them up. */
  web?: WebSettings;
  robotWaitMs?: number;
  /**
   * The portal's time: token expiry, the leaky bucket, event timestamps, delivery delays and
   * timeouts, robot waits, state writes. Default the real clock; tests pass one they advance.
   */
  clock?: SandboxClock;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

export interface Sandbox {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  portal: SandboxPortal;
  outbound: Outbound;
  /** REST requests the portal admitted and refused (503) since it started. */
  stats: RestStats;
  /** Changes the leaky bucket from now on (benchmarks switch it off for their set-up). */
  setLimits(limits: SandboxOptions['limits']): void;
  close(): Promise<void>;
}

const ENTITIES: readonly EntityKind[] = ['lead', 'contact', 'deal'];

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const host = opts.host ?? '127.0.0.1';
  const app = express();
  app.disable('x-powered-by');
  const mounted = express.Router();
  app.use((req, res, next) => mounted(req, res, next));

  const given = opts.server;
  const server: Server = given
    ? given.on('request', app)
    : await new Promise((resolve, reject) => {
        const bind = opts.bind ?? (host === 'localhost' ? undefined : host);
        // Express 5 hands a failed listen (EADDRINUSE …) to the callback.
        const listening = (error?: Error) => (error ? reject(error) : resolve(s));
        const s = bind === undefined ? app.listen(opts.port, listening) : app.listen(opts.port, bind, listening);
        s.once('error', reject);
      });
  const port = (server.address() as AddressInfo).port;
  const domain = `${host}:${port}`;
  const clock = opts.clock ?? realClock;
  const portal = createPortal({
    clock,
    stateFile: opts.dataDir ? path.join(opts.dataDir, 'portal.json') : null,
    domain,
    protocol: 'http',
    ...(opts.tokenLifetimeSec ? { tokenLifetimeSec: opts.tokenLifetimeSec } : {}),
  });
  for (const spec of opts.apps ?? []) portal.upsertApp(spec);
  const outbound = new Outbound(portal, { clock, ...(opts.log ? { log: opts.log } : {}), ...(opts.robotWaitMs ? { robotWaitMs: opts.robotWaitMs } : {}) });

  const stats: RestStats = { requests: 0, throttled: 0, commands: 0, byMethod: {} };
  const restOptions: RestOptions = { limits: opts.limits ?? { drainPerSec: 2, burst: 50 }, stats };
  mounted.use(restRoutes(portal, restOptions));
  mounted.use(oauthRoutes(portal));
  mounted.use('/_sandbox/control', loopbackOnly, express.json(), controlRoutes(portal, outbound));
  mounted.use(
    webRoutes(portal, {
      installFinished: (clientId) => outbound.installFinished(clientId),
      uninstall: (clientId, clean) => outbound.uninstall(clientId, clean),
    }, opts.web),
  );

  const url = `http://${domain}`;
  return {
    url,
    portal,
    outbound,
    stats,
    setLimits(limits) {
      restOptions.limits = limits ?? { drainPerSec: 2, burst: 50 };
    },
    async close() {
      outbound.close();
      await outbound.idle();
      if (given) {
        given.off('request', app);
        given.closeAllConnections();
      } else {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
      }
      portal.close();
    },
  };
}

function loopbackOnly(req: Request, res: Response, next: NextFunction): void {
  const ip = req.socket.remoteAddress ?? '';
  if (ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1') return next();
  res.status(403).json({ error: 'control API is loopback only' });
}

/** Test controls: faults, installs without a browser, changes "made by a robot", what was delivered. */
function controlRoutes(portal: SandboxPortal, outbound: Outbound): express.Router {
  const r = express.Router();
  r.get('/faults', (_req, res) => void res.json(outbound.getFaults()));
  r.post('/faults', (req, res) => {
    try {
      res.json(outbound.setFaults((req.body ?? {}) as Partial<Faults>));
    } catch (e) {
      res.status(400).json({ error: (e as Error).message });
    }
  });
  r.post('/apps/:clientId/install', async (req, res) => {
    if (!portal.app(req.params.clientId)) return void res.status(404).json({ error: `no application ${req.params.clientId}` });
    const page = await outbound.installHeadless(req.params.clientId);
    await outbound.idle();
    res.status(page.status === 200 ? 200 : 502).json({ wizardStatus: page.status, installed: portal.app(req.params.clientId)?.installed ?? false });
  });
  r.post('/apps/:clientId/uninstall', async (req, res) => {
    if (!portal.app(req.params.clientId)) return void res.status(404).json({ error: `no application ${req.params.clientId}` });
    await outbound.uninstall(req.params.clientId, Boolean((req.body as { clean?: unknown } | undefined)?.clean));
    res.json({ installed: false });
  });
  /** A change made by an automation rule: events go out without tokens (reference §4.2). */
  r.post('/crm/:entity/:id', (req, res) => {
    const entity = req.params.entity as EntityKind;
    const id = Number(req.params.id);
    const fields = (req.body as { fields?: unknown } | undefined)?.fields;
    if (!ENTITIES.includes(entity)) return void res.status(400).json({ error: 'entity must be lead, contact or deal' });
    if (!Number.isInteger(id) || id <= 0) return void res.status(400).json({ error: 'id must be a positive integer' });
    if (!fields || typeof fields !== 'object' || Array.isArray(fields)) return void res.status(400).json({ error: 'fields must be an object' });
    if (!portal.getEntity(entity, id)) return void res.status(404).json({ error: `no ${entity} ${id}` });
    portal.updateEntity(entity, id, fields as Record<string, unknown>, { userId: 0, byRobot: true });
    res.json({ ok: true });
  });
  r.get('/deliveries', (_req, res) => void res.json(outbound.deliveries));
  r.post('/idle', async (_req, res) => {
    await outbound.idle();
    res.json({ idle: true });
  });
  return r;
}
