/**
 * POST /api/promo-campaigns (SPEC 3, 5; admins): a campaign of `count` one-time codes worth a
 * fixed bonus each (seen in the field: codes printed on products, ~9 000 activations in six
 * months). The campaign row and all its codes are written in one transaction: codes are drawn
 * in memory and inserted with one statement per round, skipping any the portal already has, until
 * the campaign holds `count` distinct codes — 10 000 codes take one round and a fraction of a
 * second.
 */
import { generatePromoCodes } from '../rules/promo-codes.js';
import { AppError } from './errors.js';
import type { Deps, PromoCampaignSummary } from './ports.js';

export interface NewCampaignInput {
  name: string;
  count: number;
  /** Minor units, > 0. */
  value: number;
  expiresAt: Date | null;
}

// Collisions with the portal's earlier codes are rare (8 characters of 31); this many rounds
// without filling the campaign means the random source is broken.
const MAX_ROUNDS = 20;

export async function createPromoCampaign(deps: Deps, portalId: number, input: NewCampaignInput, userId: number): Promise<PromoCampaignSummary> {
  const now = deps.clock.now();
  if (input.expiresAt !== null && input.expiresAt.getTime() <= now.getTime()) {
    throw new AppError('bad_request', 'Invalid promo campaign: expiresAt', [{ path: 'expiresAt', message: 'must be in the future' }]);
  }
  const campaign = await deps.store.transaction(async (tx) => {
    const created = await tx.promo.createCampaign({ portalId, name: input.name, value: input.value, codeCount: input.count, expiresAt: input.expiresAt, createdBy: userId, createdAt: now });
    let missing = input.count;
    for (let round = 0; missing > 0; round++) {
      if (round >= MAX_ROUNDS) throw new Error(`Could not find ${missing} free promo codes after ${MAX_ROUNDS} rounds`);
      missing -= (await tx.promo.addCodes(portalId, created.id, generatePromoCodes(deps.randomBytes, missing))).length;
    }
    return created;
  });
  deps.log.info({ portalId, campaignId: campaign.id, count: input.count, value: input.value, userId }, 'promo.campaign_created');
  return { ...campaign, used: 0 };
}
