/**
 * Installation health for admins (SPEC 7, issue 12): `GET /api/health`, `POST /api/health/repair`,
 * `POST /api/jobs/:id/retry`. Thin: check the admin right, parse, call one handler.
 */
import { Router } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { requireAdmin } from '../../src/handlers/authenticate-user.js';
import type { Deps } from '../../src/handlers/ports.js';
import { readHealth } from '../../src/handlers/read-health.js';
import { repairInstallation } from '../../src/handlers/repair-installation.js';
import { retryDeadJob } from '../../src/handlers/retry-dead-job.js';
import { caller } from '../middleware/api-auth.js';
import { positiveId } from './api-params.js';

const jobParams = z.object({ id: positiveId });

export function healthApiRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/api/health', async (_req, res) => {
    const c = caller(res);
    requireAdmin(c);
    res.json(await readHealth(deps, c.installation));
  });

  router.post('/api/health/repair', async (_req, res) => {
    const c = caller(res);
    requireAdmin(c);
    res.json(await repairInstallation(deps, c.installation));
  });

  router.post('/api/jobs/:id/retry', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const { id } = parseOrThrow(jobParams, req.params, 'job retry');
    res.json(await retryDeadJob(deps, c.installation.id, id));
  });

  return router;
}
