/**
 * createApp(deps): the Express application, never listening (STYLE.md practice 2). Tests build
 * it with real adapters; server/main.ts listens and shuts down.
 */
import express, { type Express } from 'express';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Deps } from '../src/handlers/ports.js';
import { clientAssetRoutes, defaultClientDir, loadClientAssets, type ClientAssets } from './client-assets.js';
import type { IngestPressure } from './jobs/ingest-pressure.js';
import type { Metrics } from './metrics.js';
import { errorHandler, notFound, requestId } from './middleware/error-handler.js';
import { bitrixBody, queryParser } from './middleware/body.js';
import { apiRoutes } from './routes/api.js';
import { eventRoutes } from './routes/events.js';
import { frameRoutes } from './routes/frame.js';
import { healthRoutes } from './routes/health.js';
import { robotRoutes } from './routes/robots.js';
import { homeRoutes } from './routes/home.js';
import { installRoutes } from './routes/install.js';
import { metricsRoutes } from './routes/metrics.js';
import { referralLinkRoutes, type ReferralLinkOptions } from './routes/referral-link.js';

export interface AppDeps extends Deps {
  /** Store reachable and migrated (for /readyz). */
  ready: () => Promise<boolean>;
  metrics: Metrics;
  /** Deliveries in flight, for the queue worker (composeDeps makes one). */
  ingest?: IngestPressure;
  /** Sandbox mode: the sandbox portal's page, linked from `GET /`. */
  portalUrl?: string;
  /** Rate limit of the public referral link route (tests tighten it). */
  referralLinks?: ReferralLinkOptions;
  /** Directory of the built Vue client (default dist/client; tests hand in a fixture). */
  clientDir?: string;
}

/**
 * The listen backlog (connections the kernel holds until the process accepts them), capped by
 * net.core.somaxconn. Bitrix24 delivers a bulk change as one burst of concurrent POSTs; with
 * Node's default of 511, the connections beyond it are dropped and retried by TCP after 1 s,
 * 3 s, 7 s — past the portal's patience for slow handlers, which then loses the event.
 */
export const LISTEN_BACKLOG = 4096;

const require = createRequire(import.meta.url);
const sdkBundle = path.join(path.dirname(require.resolve('@bitrix24/b24jssdk/package.json')), 'dist/umd/index.min.js');

export function createApp(deps: AppDeps): Express {
  const app = express();
  // Read on the first frame request, and again on later ones until the client is built.
  const clientDir = deps.clientDir ?? defaultClientDir();
  let assets: ClientAssets | null = null;
  const client = (): ClientAssets => (assets ??= loadClientAssets(clientDir));
  app.disable('x-powered-by');
  app.set('query parser', queryParser);
  // The client address (rate limits of the public referral link, its hashed visitor) is the
  // nearest one that is not a private hop: X-Forwarded-For written by a reverse proxy on a private
  // network counts, one sent by an internet client straight to us does not.
  app.set('trust proxy', 'loopback, linklocal, uniquelocal');
  app.use(requestId());
  // Before the body is read: the ack latency includes reading it.
  app.post('/b24/events', deps.metrics.eventAckTimer());
  const { ingest } = deps;
  if (ingest) {
    app.post('/b24/events', (_req, res, next) => {
      res.once('close', ingest.begin());
      next();
    });
  }
  // Every body is read (bounded) before routing: see bitrixBody.
  app.use(bitrixBody());
  // First after the body: the hot path (a bulk change is thousands of events at once) is
  // matched before the routers of every other surface are walked.
  app.use(eventRoutes(deps));
  app.use(robotRoutes(deps));
  app.use(healthRoutes({ ready: deps.ready }));
  app.use(metricsRoutes(deps.metrics));
  app.use(homeRoutes({ portalUrl: deps.portalUrl }));
  // The frame SDK for pages rendered inside Bitrix24 (install wizard, frame pages).
  app.get('/static/b24jssdk.js', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=86400');
    res.sendFile(sdkBundle);
  });
  app.use(installRoutes(deps));
  app.use(clientAssetRoutes(() => clientDir));
  app.use(frameRoutes(deps, client));
  app.use(apiRoutes(deps));
  app.use(referralLinkRoutes(deps, deps.referralLinks));
  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}
