/**
 * The admin page's ledger (issue 12): GET /api/ledger (search, paged) and GET /api/payouts.csv
 * (cash owed to referrers for a period). Admins only.
 */
import { Router, type Response } from 'express';
import { z } from 'zod';
import { ledgerKindSchema, ledgerReasonSchema } from '../../src/contract/api.js';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { requireAdmin } from '../../src/handlers/authenticate-user.js';
import { AppError } from '../../src/handlers/errors.js';
import { exportPayouts } from '../../src/handlers/export-payouts.js';
import type { Deps } from '../../src/handlers/ports.js';
import { DEFAULT_SEARCH_PAGE, MAX_SEARCH_PAGE, searchLedger } from '../../src/handlers/search-ledger.js';
import { caller } from '../middleware/api-auth.js';
import { bound, positiveId } from './api-params.js';

const ledgerSearchQuery = z.object({
  person: z
    .string()
    .regex(/^(contact|lead):\d{1,15}$/, 'must be contact:<id> or lead:<id>')
    .transform((v) => {
      const [entity, id] = v.split(':') as ['contact' | 'lead', string];
      return { entity, id: Number(id) };
    })
    .refine((p) => p.id > 0 && Number.isSafeInteger(p.id), 'must be contact:<id> or lead:<id>')
    .optional(),
  deal: positiveId.optional(),
  reason: ledgerReasonSchema.optional(),
  kind: ledgerKindSchema.optional(),
  from: bound(false),
  to: bound(true),
  before: positiveId.optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, `must be an integer from 1 to ${MAX_SEARCH_PAGE}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= MAX_SEARCH_PAGE, `must be an integer from 1 to ${MAX_SEARCH_PAGE}`)
    .optional(),
});

const payoutsQuery = z.object({
  from: bound(false),
  to: bound(true),
  sep: z.enum([',', ';'], { error: 'must be "," or ";"' }).default(','),
});

function checkPeriod(q: { from?: Date | undefined; to?: Date | undefined }, what: string): void {
  if (q.from && q.to && q.from.getTime() >= q.to.getTime()) throw new AppError('bad_request', `Invalid ${what}`, [{ path: 'to', message: 'must be after from' }]);
}

async function stream(res: Response, chunks: AsyncIterable<string>): Promise<void> {
  for await (const chunk of chunks) {
    // Respect back-pressure: a slow client does not make the whole export pile up in memory.
    if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve));
  }
  res.end();
}

export function ledgerAdminRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/api/ledger', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const q = parseOrThrow(ledgerSearchQuery, req.query, 'ledger search');
    checkPeriod(q, 'ledger search');
    res.json(
      await searchLedger(deps, c.installation.id, {
        limit: q.limit ?? DEFAULT_SEARCH_PAGE,
        ...(q.person ? { person: q.person } : {}),
        ...(q.deal === undefined ? {} : { dealId: q.deal }),
        ...(q.reason ? { reason: q.reason } : {}),
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.from ? { from: q.from } : {}),
        ...(q.to ? { to: q.to } : {}),
        ...(q.before === undefined ? {} : { beforeId: q.before }),
      }),
    );
  });

  router.get('/api/payouts.csv', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const q = parseOrThrow(payoutsQuery, req.query, 'payouts export');
    checkPeriod(q, 'payouts export');
    const chunks = await exportPayouts(deps, c.installation.id, { ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}), delimiter: q.sep });
    res.status(200);
    res.set('Content-Type', 'text/csv; charset=utf-8');
    res.set('Content-Disposition', 'attachment; filename="sarafan-payouts.csv"');
    await stream(res, chunks);
  });

  return router;
}
