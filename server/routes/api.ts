/**
 * The JSON API for the frame UI (SPEC 3), authenticated per request with the user's Bitrix24
 * access token and the portal's member_id (verified on the portal's stored endpoint).
 */
import { Router } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { requireAdmin } from '../../src/handlers/authenticate-user.js';
import { AppError } from '../../src/handlers/errors.js';
import { exportLedger } from '../../src/handlers/export-ledger.js';
import { listProgramVersions } from '../../src/handlers/list-program-versions.js';
import { getProgram, updateProgram } from '../../src/handlers/manage-program.js';
import { readDeal } from '../../src/handlers/read-deal.js';
import { DEFAULT_LEDGER_PAGE, MAX_LEDGER_PAGE, readMember } from '../../src/handlers/read-member.js';
import type { Deps } from '../../src/handlers/ports.js';
import { apiAuth, caller } from '../middleware/api-auth.js';
import { analyticsRoutes } from './api-analytics.js';
import { cardApiRoutes } from './api-card.js';
import { ledgerAdminRoutes } from './api-ledger.js';
import { memberWriteRoutes } from './api-members-write.js';
import { promoApiRoutes } from './api-promo.js';
import { programPreviewRoutes } from './api-program-preview.js';
import { referralRoutes } from './api-referrals.js';
import { bound, dealParams, memberParams, positiveId } from './api-params.js';
import { redeemRoutes } from './api-redeem.js';
import { healthApiRoutes } from './api-health.js';

const ledgerQuery = z.object({
  limit: z
    .string()
    .regex(/^\d{1,3}$/, `must be an integer from 1 to ${MAX_LEDGER_PAGE}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= MAX_LEDGER_PAGE, `must be an integer from 1 to ${MAX_LEDGER_PAGE}`)
    .optional(),
  before: positiveId.optional(),
});

const ledgerCsvQuery = z.object({
  from: bound(false),
  to: bound(true),
  sep: z.enum([',', ';'], { error: 'must be "," or ";"' }).default(','),
});

export function apiRoutes(deps: Deps): Router {
  const router = Router();
  router.use('/api', apiAuth(deps));
  router.use(promoApiRoutes(deps));

  router.get('/api/program', async (_req, res) => {
    const c = caller(res);
    requireAdmin(c);
    res.json(await getProgram(deps, c.installation.id));
  });

  router.put('/api/program', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    res.json(await updateProgram(deps, c.installation.id, req.body, c.userId));
  });

  router.use(programPreviewRoutes(deps));

  router.get('/api/program/versions', async (_req, res) => {
    const c = caller(res);
    requireAdmin(c);
    res.json(await listProgramVersions(deps, c.installation.id));
  });

  router.get('/api/members/:entity/:id', async (req, res) => {
    const c = caller(res);
    const { entity, id } = parseOrThrow(memberParams, req.params, 'member request');
    const { limit, before } = parseOrThrow(ledgerQuery, req.query, 'ledger page');
    res.json(await readMember(deps, c.installation, { entity, id, limit: limit ?? DEFAULT_LEDGER_PAGE, ...(before === undefined ? {} : { before }) }));
  });

  router.get('/api/deals/:id', async (req, res) => {
    const c = caller(res);
    const { id } = parseOrThrow(dealParams, req.params, 'deal request');
    res.json(await readDeal(deps, c.installation, id));
  });

  router.use(cardApiRoutes(deps));
  router.get('/api/ledger.csv', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const q = parseOrThrow(ledgerCsvQuery, req.query, 'ledger export');
    if (q.from && q.to && q.from.getTime() >= q.to.getTime()) throw new AppError('bad_request', 'Invalid ledger export', [{ path: 'to', message: 'must be after from' }]);
    const chunks = await exportLedger(deps, c.installation.id, { ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}), delimiter: q.sep });
    res.status(200);
    res.set('Content-Type', 'text/csv; charset=utf-8');
    res.set('Content-Disposition', 'attachment; filename="sarafan-ledger.csv"');
    for await (const chunk of chunks) {
      // Respect back-pressure: a slow client does not make the whole export pile up in memory.
      if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve));
    }
    res.end();
  });

  router.use(redeemRoutes(deps));
  router.use(memberWriteRoutes(deps));
  router.use(referralRoutes(deps));
  router.use(healthApiRoutes(deps));
  router.use(ledgerAdminRoutes(deps));
  router.use(analyticsRoutes(deps));

  return router;
}

