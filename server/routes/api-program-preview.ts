/**
 * `POST /api/program/preview` (admins): a program document and a hypothetical deal → the entries
 * the program would create for it. Amounts cross as decimals in the program currency.
 */
import { Router } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { requireAdmin } from '../../src/handlers/authenticate-user.js';
import type { Deps } from '../../src/handlers/ports.js';
import { previewProgram } from '../../src/handlers/preview-program.js';
import { fromMinor, toMinor } from '../../src/rules/money.js';
import { caller } from '../middleware/api-auth.js';

const amount = z
  .number()
  .gt(0, 'must be more than 0')
  .refine((v) => toMinor(v) !== null && fromMinor(toMinor(v)!) === v, 'must be an amount with at most 2 decimal places')
  .transform((v) => toMinor(v)!);

const previewBody = z.strictObject({
  program: z.unknown().optional(),
  deal: z.strictObject({
    amount,
    currency: z.string().regex(/^[A-Z]{3}$/, 'must be a 3-letter upper-case currency code, e.g. "RUB"'),
    depth: z.int().gte(0, 'must be at least 0').lte(10, 'must be at most 10'),
    categoryId: z.int().gte(0, 'must be a pipeline id (0 or more)').optional(),
  }),
});

export function programPreviewRoutes(deps: Deps): Router {
  const router = Router();
  router.post('/api/program/preview', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const body = parseOrThrow(previewBody, req.body, 'preview request');
    const { program, deal, result } = await previewProgram(deps, c.installation, body.program, {
      amount: body.deal.amount,
      currency: body.deal.currency,
      depth: body.deal.depth,
      ...(body.deal.categoryId === undefined ? {} : { categoryId: body.deal.categoryId }),
    });
    res.json({
      currency: program.currency,
      deal: { amount: fromMinor(deal.amount), currency: deal.currency, depth: deal.depth },
      priced: result.priced,
      ...(result.priced ? {} : { reason: result.reason }),
      entries: result.entries.map((e) => ({
        beneficiary: e.beneficiary,
        reason: e.reason,
        level: e.level,
        amount: fromMinor(e.amount),
        capped: fromMinor(e.capped),
        status: e.status,
        availableAt: e.availableAt.toISOString(),
      })),
      total: fromMinor(result.total),
      fx: result.fx ? { currency: result.fx.currency, rate: result.fx.rate, amount: fromMinor(result.fx.amount) } : null,
    });
  });
  return router;
}
