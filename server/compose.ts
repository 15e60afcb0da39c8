/**
 * The one place adapters are chosen (STYLE.md practice 5): the store, the gateway over
 * b24jssdk, the CRM port, change scanner and history reader, the OAuth server, the registration
 * reconciler, and this composition's metrics.
 */
import { randomBytes } from 'node:crypto';
import { buildManifest } from '../install/manifest.js';
import { createCrmScanner } from '../src/bitrix/crm-changes.js';
import { createCrmHistory } from '../src/bitrix/crm-history.js';
import { createPortalGateways } from '../src/bitrix/gateway.js';
import { createCrmPorts } from '../src/bitrix/crm.js';
import { createOAuthServer } from '../src/bitrix/oauth-server.js';
import { reconcileRegistration } from '../src/bitrix/reconcile.js';
import { inspectRegistration } from '../src/bitrix/registration-health.js';
import type { Clock, Deps, Log, Store } from '../src/handlers/ports.js';
import { createIngestPressure, type IngestPressure } from './jobs/ingest-pressure.js';
import { createMetrics, type Metrics, type ReconcileLag } from './metrics.js';

export interface ComposeOptions {
  store: Store;
  log: Log;
  appBaseUrl: string;
  clientId: string;
  clientSecret: string;
  oauthUrl: string;
  allowInsecurePortals: boolean;
  clock?: Clock;
  /** Gateway retry budget (tests shorten it). */
  maxRetries?: number;
  /**
   * The periodic reconciliation's watermark ages for `sarafan_reconcile_lag_seconds`. The
   * reconciliation (SPEC 6) supplies it once it exists, from server/main.ts; until then the
   * gauge has no series.
   */
  reconcileLag?: ReconcileLag;
  /** How long a short last batch of feedback waits for the rest of a burst (send-feedback.ts). */
  feedbackHoldMs?: number;
}

/** What the process layer passes around: the use cases' Deps plus this composition's metrics. */
export interface ServerDeps extends Deps {
  metrics: Metrics;
  /** Deliveries in flight (the events route counts them, the worker yields to them). */
  ingest: IngestPressure;
}

export const systemClock: Clock = { now: () => new Date() };

export function composeDeps(o: ComposeOptions): ServerDeps {
  const clock = o.clock ?? systemClock;
  // Seconds since each active portal's last completed reconciliation, labelled by its (hashed) member id.
  const reconcileLag: ReconcileLag =
    o.reconcileLag ??
    (async () => {
      const lags = await o.store.watermarks.reconcileLag(clock.now());
      const out: { portal: string; seconds: number }[] = [];
      for (const [portalId, seconds] of lags) {
        const installation = await o.store.installations.get(portalId);
        if (installation) out.push({ portal: installation.memberId, seconds });
      }
      return out;
    });
  const metrics = createMetrics({ jobs: o.store.jobs, clock, log: o.log, reconcileLag });
  const gateways = createPortalGateways({
    installations: o.store.installations,
    clientId: o.clientId,
    clientSecret: o.clientSecret,
    oauthUrl: o.oauthUrl,
    allowInsecure: o.allowInsecurePortals,
    log: o.log,
    ...(o.maxRetries !== undefined ? { maxRetries: o.maxRetries } : {}),
    observer: metrics,
    // Token lifetimes are read on the composed clock (the sandbox demo runs one behind the wall clock).
    ...(o.clock ? { now: () => clock.now().getTime() } : {}),
  });
  const manifest = buildManifest(o.appBaseUrl);
  return {
    ingest: createIngestPressure(),
    store: o.store,
    gateways,
    crm: createCrmPorts(gateways),
    crmScanner: createCrmScanner(gateways),
    oauth: createOAuthServer({
      oauthUrl: o.oauthUrl,
      clientId: o.clientId,
      clientSecret: o.clientSecret,
      allowInsecure: o.allowInsecurePortals,
      ...(o.clock ? { now: () => clock.now().getTime() } : {}),
    }),
    registrar: { reconcile: (installation) => reconcileRegistration(gateways.forInstallation(installation), manifest, clock.now(), installation) },
    crmHistory: createCrmHistory(gateways, clock),
    clock,
    log: o.log,
    appBaseUrl: o.appBaseUrl.replace(/\/+$/, ''),
    randomBytes: (n) => randomBytes(n),
    registration: { inspect: (installation) => inspectRegistration(gateways.forInstallation(installation), manifest, installation) },
    ...(o.feedbackHoldMs !== undefined ? { feedbackHoldMs: o.feedbackHoldMs } : {}),
    metrics,
  };
}
