/**
 * GET /api/analytics (SPEC 8; admins) through the app: referred deals won through the real loop
 * (events → worker → ledger), then the dashboard's figures read from the store — the answer
 * parses with the contract's schema, the liability equals what the member cards answer, and the
 * call asks the portal nothing but the caller's `profile` (msw refuses anything unexpected).
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScheduler } from '../../server/jobs/scheduler.js';
import { analyticsAnswerSchema } from '../../src/contract/admin.js';
import type { MemberAnswer } from '../../src/contract/api.js';
import type { NewLedgerEntry } from '../../src/handlers/ports.js';
import { DEFAULT_PROGRAM } from '../../src/rules/program.js';
import { createHarness, type Harness } from '../support/harness.js';
import { enrolledReferrer, installApp, referredWin } from '../support/scenario.js';

const DAY = 86_400_000;
const ADMIN = 'user-token-admin-analytics-01';
const MANAGER = 'user-token-manager-analytics-02';
let h: Harness;
let pid: number;
// The injected clock (the SDK's tokens need the real one underneath); every instant the test
// checks is taken from it, never from the wall clock directly.
const now = () => new Date(Date.now());

const api = (path: string, token = ADMIN) => request(h.app).get(path).set('Authorization', `Bearer ${token}`).set('X-Sarafan-Portal', h.portal.memberId);

beforeAll(async () => {
  h = await createHarness({ clock: { now } });
  h.portal.users.set(ADMIN, { ID: '1', ADMIN: true, NAME: 'Админ' });
  h.portal.users.set(MANAGER, { ID: '7', ADMIN: false, NAME: 'Менеджер' });
  pid = await installApp(h);
  await h.store.programs.create(pid, { ...DEFAULT_PROGRAM, expiry: { days: 20 } }, null, now());
});

afterAll(async () => {
  await h?.close();
});

describe('GET /api/analytics', () => {
  let referrer: { contact: number; code: string };
  const people: number[] = [];

  it('answers the figures of referred deals won through the loop, asking the portal nothing but who calls', async () => {
    referrer = await enrolledReferrer(h, pid, 'Анна');
    const b = await referredWin(h, referrer.code, 1000, 'Борис');
    const v = await referredWin(h, referrer.code, 3000, 'Вера');
    people.push(referrer.contact, b.contact, v.contact);
    const from = new Date(now().getTime() - DAY).toISOString();
    const to = new Date(now().getTime() + DAY).toISOString();

    h.portal.resetCalls();
    const res = await api(`/api/analytics?from=${from}&to=${to}`);
    expect(res.status).toBe(200);
    expect(h.portal.calls.map((c) => c.method)).toEqual(['profile']);
    const a = analyticsAnswerSchema.parse(res.body);
    expect(a.period).toEqual({ from, to });
    expect(a.funnel).toEqual({ clicks: 0, referredLeads: 2, referredDeals: 2, wonReferredDeals: 2 });
    // The default program pays the referrer 10 % of each referee's first won deal.
    expect(a.referredRevenue).toBe(4000);
    expect(a.rewardCostByReason).toEqual({ referral: 400, welcome: 0, cashback: 0, coupon: 0 });
    expect(a.rewardCost).toBe(400);
    expect(a.roiPercent).toBe(900);
    expect(a.topReferrers).toEqual([{ member: { entity: 'contact', id: referrer.contact }, code: referrer.code, wonReferredDeals: 2, referredRevenue: 4000, earned: 400 }]);
    // The referrer's own first deal (1.00) makes it a client who came without a referral.
    expect(a.ltv).toEqual({ referred: { clients: 2, averageLtv: 2000, repeatShare: 0 }, others: { clients: 1, averageLtv: 1, repeatShare: 0 } });
    expect(a.liability).toEqual({ available: 400, pending: 0, expiring30d: 400 });
    expect(a.tiers).toEqual([]);
    expect(a.monthly.reduce((s, m) => s + m.wonReferredDeals, 0)).toBe(2);
    // Stored: the ledger holds exactly the two referral credits the figures summed.
    const credits = (await h.store.ledger.forMembers(pid, [(await h.store.members.findByEntity(pid, 'contact', referrer.contact))!.id])).filter((e) => e.reason === 'referral');
    expect(credits.map((e) => e.amount).sort((x, y) => x - y)).toEqual([100_00, 300_00]);
  });

  it('answers a liability equal to the sum of what the member cards show, with holds, spends and expiry', async () => {
    const at = now();
    const member = async (name: string) => {
      const contact = h.portal.add('contact', { NAME: name });
      people.push(contact);
      return (await h.store.members.ensure(pid, 'contact', contact, at)).id;
    };
    const g = await member('Глеб');
    const d = await member('Дина');
    const referrerId = (await h.store.members.findByEntity(pid, 'contact', referrer.contact))!.id;
    let n = 0;
    const entry = (memberId: number, amount: number, over: Partial<NewLedgerEntry>): NewLedgerEntry => ({
      portalId: pid,
      memberId,
      amount,
      reason: 'promo',
      kind: amount < 0 ? 'correction' : 'credit',
      dealId: null,
      level: 0,
      programVersion: null,
      idempotencyKey: `analytics-test:${++n}`,
      availableAt: at,
      expiresAt: null,
      causedBy: 'user:1',
      comment: null,
      createdAt: at,
      ...over,
    });
    await h.store.ledger.append([
      // G: a lot expiring in 10 days, half spent; another held for 5 days, then expiring after 45.
      entry(g, 200_00, { availableAt: new Date(at.getTime() - 10 * DAY), expiresAt: new Date(at.getTime() + 10 * DAY) }),
      entry(g, -50_00, { reason: 'redemption', availableAt: new Date(at.getTime() - DAY) }),
      entry(g, 70_00, { availableAt: new Date(at.getTime() + 5 * DAY), expiresAt: new Date(at.getTime() + 45 * DAY) }),
      // D: a lot whose expiry passed (not yet written off by the job), and one that never expires.
      entry(d, 30_00, { availableAt: new Date(at.getTime() - 40 * DAY), expiresAt: new Date(at.getTime() - DAY) }),
      entry(d, 15_00, {}),
      // The referrer spends some of its rewards.
      entry(referrerId, -120_00, { reason: 'redemption' }),
    ]);

    const res = await api('/api/analytics');
    expect(res.status).toBe(200);
    const a = analyticsAnswerSchema.parse(res.body);
    const cards: MemberAnswer[] = [];
    for (const contact of people) {
      const card = await api(`/api/members/contact/${contact}`);
      expect(card.status).toBe(200);
      cards.push(card.body as MemberAnswer);
    }
    const total = (of: (c: MemberAnswer) => number) => Math.round(cards.reduce((s, c) => s + of(c), 0) * 100) / 100;
    expect(a.liability).toEqual({ available: total((c) => c.balance), pending: total((c) => c.pending), expiring30d: total((c) => c.expiring.total) });
    // By hand: 400 − 120 + (200 − 50) + (30 + 15) = 475 available, 70 held; expiring within 30
    // days: the referrer's 280 left of its rewards, G's 150 left of its first lot.
    expect(a.liability).toEqual({ available: 475, pending: 70, expiring30d: 430 });
    // Default period: the 12 calendar months up to now.
    expect(a.monthly).toHaveLength(12);

    // The hourly bonus.expire job writes D's lapsed lot off and stores the members' expiry outlook
    // (migration 0014): the answer then reads it without replaying anyone, and equals the cards.
    expect(await createScheduler(h.deps, {}).tick('bonus.expire', now())).toEqual({ claimed: true, enqueued: 1 });
    await h.worker.drain();
    expect((await h.store.analytics.expiryCandidates(pid, now(), 30 * DAY)).size).toBe(0);
    expect(await h.store.analytics.expiringFromOutlook(pid, now(), 30 * DAY)).toBe(430_00);
    const later = analyticsAnswerSchema.parse((await api('/api/analytics')).body);
    cards.length = 0;
    for (const contact of people) cards.push((await api(`/api/members/contact/${contact}`)).body as MemberAnswer);
    expect(later.liability).toEqual({ available: total((c) => c.balance), pending: total((c) => c.pending), expiring30d: total((c) => c.expiring.total) });
    expect(later.liability).toEqual({ available: 445, pending: 70, expiring30d: 430 });
  });

  it('refuses a bad period or pipeline with 400 naming the field, and non-admins with 403', async () => {
    const bad = await api('/api/analytics?from=yesterday&category=abc');
    expect(bad.status).toBe(400);
    expect((bad.body.error.details as { path: string }[]).map((x) => x.path).sort()).toEqual(['category', 'from']);
    const reversed = await api('/api/analytics?from=2026-11-20&to=2026-11-01');
    expect(reversed.status).toBe(400);
    expect(reversed.body.error.details).toEqual([{ path: 'to', message: 'must be after from' }]);
    const long = await api('/api/analytics?from=2020-01-01&to=2025-01-01');
    expect(long.status).toBe(400);
    expect((long.body.error.details as { path: string }[])[0]!.path).toBe('to');
    expect((await api('/api/analytics?from=2020-01-01&to=2024-12-31')).status).toBe(200);
    expect((await api('/api/analytics', MANAGER)).status).toBe(403);
    expect((await request(h.app).get('/api/analytics')).status).toBe(401);
  });
});
