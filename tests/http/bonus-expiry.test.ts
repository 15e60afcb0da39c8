/**
 * Bonus expiry (SPEC 5 `expiry.days`) with an injected clock, msw playing the portal: under a
 * 30-day program, a referral reward and a promo activation are credited with their expiry; a
 * spend consumes the oldest first (FIFO), the member card shows what expires within 30 days, and
 * the hourly `bonus.expire` tick writes one `expiry` entry for the unspent remainder — once,
 * however often it runs — and the CRM BALANCE follows. Ticks with nothing due cost no REST call.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScheduler } from '../../server/jobs/scheduler.js';
import { F } from '../../src/bitrix/crm-fields.js';
import { expireBonus } from '../../src/handlers/expire-bonus.js';
import type { LedgerEntry } from '../../src/handlers/ports.js';
import type { SqlStore } from '../../src/store/open-store.js';
import { DEFAULT_PROGRAM } from '../../src/rules/program.js';
import { crmEvent } from '../fixtures/bitrix/payloads.js';
import { createHarness, type Harness } from '../support/harness.js';
import { enrolledReferrer, installApp, referredWin, sendEvent } from '../support/scenario.js';

const DAY = 24 * 3600_000;
const ADMIN = 'user-token-admin-expiry-01';
let h: Harness;
let pid: number;
/** How far the injected clock is ahead of the wall clock. */
let ahead = 0;
const now = () => new Date(Date.now() + ahead);

const raw = <T extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (h.store as SqlStore).rawQuery<T>(sql, params);
const api = (method: 'get' | 'post', path: string) => request(h.app)[method](path).set('Authorization', `Bearer ${ADMIN}`).set('X-Sarafan-Portal', h.portal.memberId);

beforeAll(async () => {
  h = await createHarness({ clock: { now } });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  pid = await installApp(h);
  await h.store.programs.create(pid, { ...DEFAULT_PROGRAM, expiry: { days: 30 } }, null, now());
});

afterAll(async () => {
  await h?.close();
});

describe('bonus expiry', () => {
  let referrer: { contact: number; code: string };
  let memberId: number;
  let reward: LedgerEntry;
  let promo: LedgerEntry;

  const ledger = async () => h.store.ledger.forMembers(pid, [memberId]);
  const balanceIsSumOfLedger = async () => {
    const [row] = await raw<{ s: string }>('SELECT coalesce(sum(amount), 0) AS s FROM ledger_entries WHERE portal_id = $1 AND member_id = $2 AND available_at <= $3', [pid, memberId, now().toISOString()]);
    const balance = (await h.store.ledger.balances(pid, [memberId], now())).get(memberId)!;
    expect(balance.available).toBe(Number(row!.s));
    return balance.available;
  };

  it('credits carry their expiry: a referral reward and a promo activation', async () => {
    referrer = await enrolledReferrer(h, pid, 'Анна');
    memberId = (await h.store.members.findByEntity(pid, 'contact', referrer.contact))!.id;
    await referredWin(h, referrer.code, 1000, 'Борис');
    const campaign = await api('post', '/api/promo-campaigns').send({ name: 'Весна', count: 1, value: 50 });
    expect(campaign.status).toBe(201);
    const code = (await raw<{ code: string }>('SELECT code FROM promo_codes WHERE portal_id = $1 AND campaign_id = $2', [pid, campaign.body.id]))[0]!.code;
    expect((await api('post', `/api/members/contact/${referrer.contact}/promo`).send({ code })).status).toBe(200);
    await h.worker.drain();

    [reward, promo] = (await ledger()).filter((e) => e.amount > 0) as [LedgerEntry, LedgerEntry];
    expect([reward.reason, reward.amount, promo.reason, promo.amount]).toEqual(['referral', 100_00, 'promo', 50_00]);
    expect(reward.expiresAt!.getTime() - reward.availableAt.getTime()).toBe(30 * DAY);
    expect(promo.expiresAt!.getTime() - promo.availableAt.getTime()).toBe(30 * DAY);
  });

  it('a spend takes the oldest bonus first; the card shows what expires within 30 days', async () => {
    ahead = 10 * DAY;
    const at = now();
    // Spending as a redemption would (the redemption route is built elsewhere): a negative entry.
    await h.store.ledger.append([
      { portalId: pid, memberId, amount: -120_00, reason: 'adjustment', kind: 'correction', dealId: null, level: 0, programVersion: null, idempotencyKey: 'test:spend', availableAt: at, expiresAt: null, causedBy: 'user:1', comment: 'spend', createdAt: at },
    ]);
    expect(await balanceIsSumOfLedger()).toBe(30_00);
    const card = await api('get', `/api/members/contact/${referrer.contact}`);
    expect(card.status).toBe(200);
    // The reward (older) was spent whole; 30 of the promo's 50 is left and lapses on its date.
    expect(card.body.expiring).toEqual({ total: 30, dates: [{ at: promo.expiresAt!.toISOString(), amount: 30 }] });
  });

  it('a tick before the expiry writes nothing and calls nothing', async () => {
    ahead = 29 * DAY;
    h.portal.resetCalls();
    expect(await createScheduler(h.deps, {}).tick('bonus.expire', now())).toEqual({ claimed: true, enqueued: 1 });
    expect(await h.worker.drain()).toBe(1);
    expect((await ledger()).filter((e) => e.reason === 'expiry')).toEqual([]);
    expect(h.portal.calls).toEqual([]);
  });

  it('past the expiry, a tick writes the unspent remainder once and BALANCE follows in the CRM', async () => {
    ahead = 31 * DAY;
    h.portal.resetCalls();
    const scheduler = createScheduler(h.deps, {});
    const tickAt = now();
    expect(await scheduler.tick('bonus.expire', tickAt)).toEqual({ claimed: true, enqueued: 1 });
    // The same tick from a second instance enqueues nothing.
    expect(await scheduler.tick('bonus.expire', tickAt)).toEqual({ claimed: false, enqueued: 0 });
    // The expiry job, then the projection job it queued.
    expect(await h.worker.drain()).toBe(2);
    const expired = (await ledger()).filter((e) => e.reason === 'expiry');
    expect(expired.map((e) => [e.amount, e.kind, e.idempotencyKey, e.availableAt.toISOString(), e.dealId])).toEqual([[-30_00, 'correction', `expiry:${promo.id}`, promo.expiresAt!.toISOString(), null]]);
    expect(await balanceIsSumOfLedger()).toBe(0);
    const updates = h.portal.commands('crm.contact.update');
    expect(updates.map((u) => [u.params.id, (u.params.fields as Record<string, unknown>)[F.BALANCE]])).toEqual([[String(referrer.contact), '0']]);
    const card = await api('get', `/api/members/contact/${referrer.contact}`);
    expect(card.body).toMatchObject({ balance: 0, expiring: { total: 0, dates: [] } });
    expect(card.body.ledger[0]).toMatchObject({ reason: 'expiry', amount: -30 });
  });

  it('later ticks, and a run that lost its watermark, write nothing more', async () => {
    ahead = 32 * DAY;
    h.portal.resetCalls();
    await createScheduler(h.deps, {}).tick('bonus.expire', now());
    expect(await h.worker.drain()).toBe(1);
    await raw("DELETE FROM watermarks WHERE portal_id = $1 AND name = 'bonus.expire'", [pid]);
    expect(await expireBonus(h.deps, pid)).toBe(0);
    expect((await ledger()).filter((e) => e.reason === 'expiry')).toHaveLength(1);
    expect(h.portal.calls).toEqual([]);
  });

  it('a deal lost after its reward expired does not take that bonus twice: the expiry is given back', async () => {
    ahead = 40 * DAY;
    const second = await referredWin(h, referrer.code, 500, 'Вера');
    const credit = (await h.store.ledger.forDeal(pid, second.deal))[0]!;
    expect(credit.amount).toBe(50_00);
    ahead = 40 * DAY + 31 * DAY;
    await createScheduler(h.deps, {}).tick('bonus.expire', now());
    await h.worker.drain();
    expect(await balanceIsSumOfLedger()).toBe(0);

    ahead = 40 * DAY + 32 * DAY;
    h.portal.update('deal', second.deal, { STAGE_ID: 'LOSE' });
    await sendEvent(h, crmEvent(h.portal, 'ONCRMDEALUPDATE', second.deal));
    await h.worker.drain();
    expect(await balanceIsSumOfLedger()).toBe(-50_00);
    h.portal.resetCalls();
    await createScheduler(h.deps, {}).tick('bonus.expire', now());
    expect(await h.worker.drain()).toBe(2);
    const reversal = (await h.store.ledger.forDeal(pid, second.deal)).find((e) => e.kind === 'reversal')!;
    const expiries = (await ledger()).filter((e) => e.reason === 'expiry').map((e) => [e.amount, e.idempotencyKey]);
    expect(expiries).toEqual([
      [-30_00, `expiry:${promo.id}`],
      [-50_00, `expiry:${credit.id}`],
      [50_00, `expiry:${credit.id}:back:${reversal.id}`],
    ]);
    expect(await balanceIsSumOfLedger()).toBe(0);
    expect(h.portal.commands('crm.contact.update').map((u) => (u.params.fields as Record<string, unknown>)[F.BALANCE])).toEqual(['0']);
  });
});
