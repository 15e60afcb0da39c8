/**
 * GET /api/promo-campaigns (list) and GET /api/promo-campaigns/:id/codes.csv (SPEC 3; admins):
 * campaigns with used/total, and a campaign's codes with who used each and when. The export is
 * produced page by page (keyset on the code) so a 100 000-code campaign streams in constant
 * memory. The CSV starts with a UTF-8 BOM — without it Excel reads UTF-8 as the ANSI code page
 * and the Cyrillic campaign name (a column, so merged exports stay readable) comes out garbled — and fields are quoted as RFC 4180 says.
 *
 * Limits: people are identified by their CRM entity and id; names stay in the portal (reading
 * them would cost REST requests per page), so the export has no name column.
 */
import { CSV_BOM, csvLine } from '../rules/csv.js';
import { fromMinor } from '../rules/money.js';
import { AppError } from './errors.js';
import { personOf } from './ledger-view.js';
import type { Deps, PromoCampaignSummary } from './ports.js';

export interface CampaignView {
  id: number;
  name: string;
  /** Program currency, decimal. */
  value: number;
  total: number;
  used: number;
  expiresAt: string | null;
  createdAt: string;
  createdBy: number | null;
}

export const campaignView = (c: PromoCampaignSummary): CampaignView => ({
  id: c.id,
  name: c.name,
  value: fromMinor(c.value),
  total: c.codeCount,
  used: c.used,
  expiresAt: c.expiresAt?.toISOString() ?? null,
  createdAt: c.createdAt.toISOString(),
  createdBy: c.createdBy,
});

export async function listPromoCampaigns(deps: Deps, portalId: number): Promise<{ campaigns: CampaignView[] }> {
  return { campaigns: (await deps.store.promo.campaigns(portalId)).map(campaignView) };
}

const PAGE = 5_000;
const HEADER = ['code', 'campaign', 'status', 'used_by_entity', 'used_by_id', 'used_at'];

export interface CodesExport {
  campaign: CampaignView;
  /** CSV text in chunks (BOM and header first). */
  chunks: AsyncIterable<string>;
}

/** 404 when the campaign is not this portal's; the chunks read the store lazily. */
export async function exportPromoCodes(deps: Deps, portalId: number, campaignId: number): Promise<CodesExport> {
  const found = await deps.store.promo.campaign(portalId, campaignId);
  if (!found) throw new AppError('not_found', `No promo campaign ${campaignId}`);
  const campaign = found;
  const now = deps.clock.now();
  const over = campaign.expiresAt !== null && campaign.expiresAt.getTime() <= now.getTime();
  async function* chunks(): AsyncGenerator<string> {
    yield CSV_BOM + csvLine(HEADER);
    let after: string | undefined;
    for (;;) {
      const page = await deps.store.promo.codes(portalId, campaignId, { limit: PAGE, ...(after === undefined ? {} : { afterCode: after }) });
      if (!page.length) return;
      let text = '';
      for (const c of page) {
        const who = personOf(c.usedBy);
        const status = c.usedAt !== null ? 'used' : over ? 'expired' : 'unused';
        text += csvLine([c.code, campaign.name, status, who?.entity ?? '', who ? String(who.id) : '', c.usedAt?.toISOString() ?? '']);
      }
      yield text;
      if (page.length < PAGE) return;
      after = page.at(-1)!.code;
    }
  }
  return { campaign: campaignView(campaign), chunks: chunks() };
}
