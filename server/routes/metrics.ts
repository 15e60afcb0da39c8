/**
 * GET /metrics — Prometheus text format for operators (SPEC 3). Unauthenticated, like /healthz:
 * keep it off the public internet (README, "Operations"). No label names a portal or carries a token.
 */
import { Router } from 'express';
import type { Metrics } from '../metrics.js';

export function metricsRoutes(metrics: Metrics): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    const body = await metrics.render();
    res.set('Content-Type', metrics.contentType).set('Cache-Control', 'no-store').send(body);
  });
  return router;
}
