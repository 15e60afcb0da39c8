import { Router } from 'express';

/**
 * Operator probes (SPEC 3). `/healthz` is liveness: the process answers, no I/O. `/readyz` is
 * readiness: `ready()` (store reachable, migrations applied) must resolve true within the timeout;
 * a false, a rejection or a slow answer is 503, so a load balancer stops sending traffic.
 */

export interface HealthDeps {
  ready: () => Promise<boolean>;
  /** How long `ready()` may take before the answer is 503 (default 2000 ms). */
  readyTimeoutMs?: number;
  /** Told why readiness failed (a rejection or the timeout); a plain `false` is not reported. */
  onNotReady?: (reason: unknown) => void;
}

export const READY_TIMEOUT_MS = 2000;

async function readyWithin(ready: () => Promise<boolean>, ms: number, onNotReady?: (reason: unknown) => void): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`readiness check took longer than ${ms} ms`)), ms);
  });
  try {
    return (await Promise.race([ready(), timeout])) === true;
  } catch (e) {
    onNotReady?.(e);
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(deps: HealthDeps): Router {
  const router = Router();
  const timeoutMs = deps.readyTimeoutMs ?? READY_TIMEOUT_MS;

  router.get('/healthz', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const ok = await readyWithin(deps.ready, timeoutMs, deps.onNotReady);
    res.set('Cache-Control', 'no-store').status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not_ready' });
  });

  return router;
}
