/**
 * `GET /api/analytics?from=&to=&category=` (admins; SPEC 8): the admin dashboard's figures for a
 * period and, optionally, one deal pipeline. `from`/`to` are dates (`2026-11-01`, UTC; `to`
 * includes its whole day) or ISO times (`to` exclusive); without them, the last 12 calendar
 * months up to now. A period is at most 5 years long.
 */
import { Router } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { requireAdmin } from '../../src/handlers/authenticate-user.js';
import { AppError } from '../../src/handlers/errors.js';
import type { Deps } from '../../src/handlers/ports.js';
import { readAnalytics } from '../../src/handlers/read-analytics.js';
import { defaultPeriod, MAX_PERIOD_YEARS, periodWithinLimit } from '../../src/rules/analytics.js';
import { caller } from '../middleware/api-auth.js';

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const bound = (end: boolean) =>
  z
    .string()
    .refine((v) => (DAY.test(v) || /^\d{4}-\d{2}-\d{2}T/.test(v)) && Number.isFinite(Date.parse(v)), 'must be a date (YYYY-MM-DD) or an ISO time')
    .transform((v) => new Date(Date.parse(v) + (end && DAY.test(v) ? 86_400_000 : 0)))
    .optional();

const analyticsQuery = z.object({
  from: bound(false),
  to: bound(true),
  // Pipeline ids start at 0 (the portal's default pipeline).
  category: z
    .string()
    .regex(/^\d{1,9}$/, 'must be a pipeline id (an integer, 0 or more)')
    .transform(Number)
    .optional(),
});

export function analyticsRoutes(deps: Deps): Router {
  const router = Router();
  router.get('/api/analytics', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const q = parseOrThrow(analyticsQuery, req.query, 'analytics request');
    // A missing end is now; a missing start is 12 calendar months before the end.
    const to = q.to ?? deps.clock.now();
    const from = q.from ?? defaultPeriod(to).from;
    if (from.getTime() >= to.getTime()) throw new AppError('bad_request', 'Invalid analytics request', [{ path: 'to', message: 'must be after from' }]);
    if (!periodWithinLimit(from, to)) throw new AppError('bad_request', 'Invalid analytics request', [{ path: 'to', message: `the period must be at most ${MAX_PERIOD_YEARS} years` }]);
    res.json(await readAnalytics(deps, c.installation.id, { from, to, category: q.category ?? null }));
  });
  return router;
}
