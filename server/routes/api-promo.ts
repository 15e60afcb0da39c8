/**
 * Promo-code campaigns in the JSON API (SPEC 3): campaigns and their CSV export for admins, and
 * the activation of a code on a person's card for any user. Mounted by api.ts behind apiAuth.
 */
import { Router } from 'express';
import { z } from 'zod';
import { parseOrThrow } from '../../src/bitrix/payloads.js';
import { promoRequestSchema } from '../../src/contract/api.js';
import { activatePromoCode } from '../../src/handlers/activate-promo-code.js';
import { requireAdmin } from '../../src/handlers/authenticate-user.js';
import { createPromoCampaign } from '../../src/handlers/create-promo-campaign.js';
import { AppError } from '../../src/handlers/errors.js';
import { campaignView, exportPromoCodes, listPromoCampaigns } from '../../src/handlers/export-promo-codes.js';
import type { Deps } from '../../src/handlers/ports.js';
import { fromMinor, toMinor } from '../../src/rules/money.js';
import { MAX_PROMO_CAMPAIGN_CODES } from '../../src/rules/promo-codes.js';
import { caller } from '../middleware/api-auth.js';
import { memberParams, positiveId } from './api-params.js';

const AMOUNT_MESSAGE = 'must be a positive amount with at most two decimals';

/** A positive decimal amount (number or numeric text) → minor units; a third decimal is refused, not rounded. */
const positiveAmount = z.union([z.number(), z.string()], { error: AMOUNT_MESSAGE }).transform((value, ctx) => {
  const minor = toMinor(value);
  if (minor === null || minor <= 0 || fromMinor(minor) !== Number(value)) {
    ctx.addIssue({ code: 'custom', message: AMOUNT_MESSAGE });
    return z.NEVER;
  }
  return minor;
});

const newCampaign = z.strictObject({
  name: z.string({ error: 'must be a text' }).trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  count: z
    .number({ error: `must be an integer from 1 to ${MAX_PROMO_CAMPAIGN_CODES}` })
    .int(`must be an integer from 1 to ${MAX_PROMO_CAMPAIGN_CODES}`)
    .min(1, `must be an integer from 1 to ${MAX_PROMO_CAMPAIGN_CODES}`)
    .max(MAX_PROMO_CAMPAIGN_CODES, `must be an integer from 1 to ${MAX_PROMO_CAMPAIGN_CODES}`),
  value: positiveAmount,
  expiresAt: z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 date-time with a time zone' })
    .transform((s) => new Date(s))
    .nullable()
    .optional(),
});

/** parseOrThrow, except that each unknown key is named by its own path (a misspelt "expiresAt" must not pass silently). */
function parseCampaign(body: unknown): z.output<typeof newCampaign> {
  const result = newCampaign.safeParse(body);
  if (result.success) return result.data;
  const details = result.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((key) => ({ path: [...i.path, key].map(String).join('.'), message: 'is not a promo campaign field' }))
      : [{ path: i.path.map(String).join('.'), message: i.message }],
  );
  throw new AppError('bad_request', `Invalid promo campaign: ${details.map((d) => d.path || '(body)').join(', ')}`, details);
}


export function promoApiRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/api/promo-campaigns', async (_req, res) => {
    const c = caller(res);
    requireAdmin(c);
    res.json(await listPromoCampaigns(deps, c.installation.id));
  });

  router.post('/api/promo-campaigns', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const input = parseCampaign(req.body);
    const campaign = await createPromoCampaign(deps, c.installation.id, { name: input.name, count: input.count, value: input.value, expiresAt: input.expiresAt ?? null }, c.userId);
    res.status(201).json(campaignView(campaign));
  });

  router.get('/api/promo-campaigns/:id/codes.csv', async (req, res) => {
    const c = caller(res);
    requireAdmin(c);
    const { id } = parseOrThrow(z.object({ id: positiveId }), req.params, 'promo campaign');
    const { campaign, chunks } = await exportPromoCodes(deps, c.installation.id, id);
    res.status(200);
    res.set('Content-Type', 'text/csv; charset=utf-8');
    res.set('Content-Disposition', `attachment; filename="promo-${campaign.id}.csv"`);
    for await (const chunk of chunks) {
      // Respect back-pressure: a slow client does not make the whole export pile up in memory.
      if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve));
    }
    res.end();
  });

  router.post('/api/members/:entity/:id/promo', async (req, res) => {
    const c = caller(res);
    const person = parseOrThrow(memberParams, req.params, 'member request');
    const { code } = parseOrThrow(promoRequestSchema, req.body, 'promo activation');
    res.json(await activatePromoCode(deps, c.installation, person, code, c.userId));
  });

  return router;
}
