/**
 * Regression (found by the mixed ledger property, issue 9): bonus that lapsed before the hourly
 * `bonus.expire` run is not spendable in between. Before the fix, a redemption or a negative
 * adjustment in that window was checked against the balance still counting the lapsed credit;
 * the run then expired the credit whole (the spend came after the lapse) and the balance went
 * negative. Now both check the balance net of what the run would write, and the run leaves the
 * balance at exactly what was never spent.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activatePromoCode } from '../../src/handlers/activate-promo-code.js';
import { adjustBalance } from '../../src/handlers/adjust-balance.js';
import { createPromoCampaign } from '../../src/handlers/create-promo-campaign.js';
import { isAppError } from '../../src/handlers/errors.js';
import { expireBonus } from '../../src/handlers/expire-bonus.js';
import type { Installation } from '../../src/handlers/ports.js';
import { processCrmChanges } from '../../src/handlers/process-crm-changes.js';
import { redeemBonus } from '../../src/handlers/redeem-bonus.js';
import { DEFAULT_PROGRAM } from '../../src/rules/program.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { installRequest } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { FORM } from '../support/scenario.js';

const DAY = 86_400_000;
let h: Harness;
let installation: Installation;
let clock = Date.parse('2027-02-01T09:00:00Z');

beforeAll(async () => {
  h = await createHarness({ clock: { now: () => new Date(clock) } });
  const { query, body } = installRequest(h.portal);
  expect((await request(h.app).post(`/b24/install?${query}`).set('Content-Type', FORM).send(body)).status).toBe(200);
  installation = (await h.store.installations.findByMemberId(h.portal.memberId))!;
  await h.store.programs.create(installation.id, { ...DEFAULT_PROGRAM, expiry: { days: 30 }, redemption: { maxPercentOfDeal: 50 } }, null, new Date(clock));
  await h.worker.drain();
});

afterAll(async () => {
  await h?.close();
});

const reasonOf = (e: unknown): string => {
  if (isAppError(e) && e.reason) return e.reason;
  throw e;
};

describe('bonus lapsed before the expiry run', () => {
  it('cannot be redeemed or adjusted away, and the run leaves what was never spent', async () => {
    const pid = installation.id;
    const contact = h.portal.add('contact', { NAME: 'Клиент' });
    const deal = h.portal.add('deal', { CONTACT_ID: contact, STAGE_ID: 'NEW', OPPORTUNITY: 2000 });
    const campaign = await createPromoCampaign(h.deps, pid, { name: 'Весна', count: 1, value: 300_00, expiresAt: null }, 1);
    const [{ code }] = (await (h.store as SqlStore).rawQuery<{ code: string }>('SELECT code FROM promo_codes WHERE portal_id = $1 AND campaign_id = $2', [pid, campaign.id])) as [{ code: string }];
    clock += 60_000;
    await activatePromoCode(h.deps, installation, { entity: 'contact', id: contact }, code, 1);
    // A bonus that never expires, so there is something left to spend after the lapse.
    await adjustBalance(h.deps, installation, { person: { entity: 'contact', id: contact }, amount: 100_00, comment: 'подарок', userId: 1 });
    await processCrmChanges(h.deps, pid, [{ entity: 'deal', id: deal, deleted: false }]);
    const memberId = (await h.store.members.findByEntity(pid, 'contact', contact))!.id;

    // The promo credit lapsed a day ago; the hourly run has not written it off yet.
    clock += 31 * DAY;
    expect((await h.store.ledger.balances(pid, [memberId], new Date(clock))).get(memberId)!.available).toBe(400_00);
    expect(await redeemBonus(h.deps, installation, { dealId: deal, amount: 150_00, userId: 7 }).then(() => 'ok', reasonOf)).toBe('insufficient_balance');
    expect(await adjustBalance(h.deps, installation, { person: { entity: 'contact', id: contact }, amount: -101_00, comment: 'списание', userId: 1 }).then(() => 'ok', reasonOf)).toBe('insufficient_balance');
    const redeemed = await redeemBonus(h.deps, installation, { dealId: deal, amount: 'max', userId: 7 });
    expect(redeemed.facts.amount).toBe(100_00);

    clock += 60_000;
    expect(await expireBonus(h.deps, pid)).toBe(1);
    const entries = await h.store.ledger.forMembers(pid, [memberId]);
    expect(entries.map((e) => [e.reason, e.amount])).toEqual([
      ['promo', 300_00],
      ['adjustment', 100_00],
      ['redemption', -100_00],
      ['expiry', -300_00],
    ]);
    expect((await h.store.ledger.balances(pid, [memberId], new Date(clock))).get(memberId)!.available).toBe(0);
  });
});
