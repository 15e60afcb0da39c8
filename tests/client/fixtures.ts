/** Answers of the API as the server gives them (the shapes of src/contract/api.ts). */
import type { AnalyticsAnswer, HealthAnswer, LedgerSearchItem } from '../../src/contract/admin';
import type { DealAnswer, LedgerItem, MemberAnswer, ReferralTree, SessionAnswer } from '../../client/src/types';

export const session = (over: Partial<SessionAnswer> = {}): SessionAnswer => ({
  userId: 7,
  isAdmin: false,
  portal: { domain: 'b24-demo.bitrix24.ru', lang: 'ru' },
  program: { version: 1, currency: 'RUB', referralEnabled: true, levels: 1, tiers: { basis: 'won_amount', levels: [{ name: 'Silver', from: 100000, cashbackPercent: 0 }, { name: 'Gold', from: 500000, cashbackPercent: 0 }] }, redemption: { maxPercentOfDeal: 50 }, expiryDays: null },
  ...over,
});

export const entry = (over: Partial<LedgerItem> = {}): LedgerItem => ({
  id: 1,
  at: '2026-11-20T10:00:00.000Z',
  reason: 'referral',
  kind: 'credit',
  amount: 7200,
  status: 'available',
  dealId: 12,
  level: 1,
  availableAt: '2026-11-20T10:00:00.000Z',
  comment: null,
  capped: 0,
  shortfall: 0,
  fx: null,
  ...over,
});

export const deal = (over: Partial<DealAnswer> = {}): DealAnswer => ({
  id: 12,
  currency: 'RUB',
  referral: { id: 3, code: 'K7M2QX', referrer: { entity: 'contact', id: 5 }, source: 'deal', status: 'active', rejectReason: null, override: null },
  entries: [{ ...entry(), member: { entity: 'contact', id: 5 } }],
  coupons: [],
  client: { entity: 'contact', id: 9, balance: 3000, pending: 0 },
  redemption: { dealAmount: 72000, dealCurrency: 'RUB', redeemed: 0, maxNow: 3000, open: true, blocked: null },
  dealTotal: 72000,
  ...over,
});

export const member = (over: Partial<MemberAnswer> = {}): MemberAnswer => ({
  entity: 'contact',
  id: 5,
  enrolled: true,
  code: 'K7M2QX',
  link: 'https://sarafan.example.com/r/p1/K7M2QX',
  joinedAt: '2026-10-01T00:00:00.000Z',
  currency: 'RUB',
  balance: 7200,
  pending: 1000,
  tier: 'Silver',
  nextTier: { name: 'Gold', from: 500000 },
  tierProgress: { basis: 'won_amount', value: 180000, nextFrom: 500000 },
  referrals: 1,
  referrer: null,
  expiring: { total: 0, dates: [] },
  referral: null,
  referralHistory: [],
  ledger: [entry()],
  coupons: [],
  nextBefore: null,
  ...over,
});

export const tree = (over: Partial<ReferralTree> = {}): ReferralTree => ({
  entity: 'contact',
  id: 5,
  currency: 'RUB',
  levels: 1,
  referrals: [{ id: 3, person: { entity: 'contact', id: 9 }, level: 1, status: 'active', rejectReason: null, createdAt: '2026-11-01T00:00:00.000Z', qualified: true, earned: 7200, branchEarned: 7200, children: [] }],
  total: 1,
  truncated: false,
  earned: 7200,
  ...over,
});

// ---------------------------------------------------------------------------------------------
// The admin page's answers (src/contract/admin.ts)
// ---------------------------------------------------------------------------------------------

export const analytics = (over: Partial<AnalyticsAnswer> = {}): AnalyticsAnswer => ({
  currency: 'RUB',
  period: { from: '2026-11-04T00:00:00.000Z', to: '2026-12-04T00:00:00.000Z' },
  category: null,
  funnel: { clicks: 400, referredLeads: 100, referredDeals: 40, wonReferredDeals: 10 },
  referredRevenue: 1250000,
  rewardCost: 125000,
  rewardCostByReason: { referral: 100000, welcome: 15000, cashback: 7500, coupon: 2500 },
  roiPercent: 900,
  ltv: { referred: { clients: 12, averageLtv: 104166.67, repeatShare: 0.25 }, others: { clients: 30, averageLtv: 80000, repeatShare: 0.1 } },
  liability: { available: 72000, pending: 18000, expiring30d: 4500.5 },
  topReferrers: [
    { member: { entity: 'contact', id: 5 }, code: 'K7M2QX', wonReferredDeals: 6, referredRevenue: 750000, earned: 75000 },
    { member: null, code: null, wonReferredDeals: 4, referredRevenue: 500000, earned: 25000 },
  ],
  tiers: [
    { name: null, members: 30 },
    { name: 'Silver', members: 9 },
    { name: 'Gold', members: 3 },
  ],
  segments: {
    computedAt: '2026-12-03T02:00:00.000Z',
    counts: [
      { segment: 'champion', members: 4 },
      { segment: 'at_risk', members: 7 },
      { segment: 'lost', members: 2 },
    ],
  },
  monthly: [
    { month: '2026-11', clicks: 300, referredDeals: 30, wonReferredDeals: 7, referredRevenue: 900000, rewardCost: 90000 },
    { month: '2026-12', clicks: 100, referredDeals: 10, wonReferredDeals: 3, referredRevenue: 350000, rewardCost: 35000 },
  ],
  ...over,
});

export const searchItem = (over: Partial<LedgerSearchItem> = {}): LedgerSearchItem => ({
  ...entry(),
  member: { entity: 'contact', id: 5 },
  causedBy: 'deal:12',
  ...over,
});

export const health = (over: Partial<HealthAnswer> = {}): HealthAnswer => ({
  checkedAt: '2026-12-03T10:00:00.000Z',
  installation: { domain: 'b24-demo.bitrix24.ru', status: 'active', installedAt: '2026-10-01T08:00:00.000Z' },
  registration: [
    { kind: 'field', name: 'UF_CRM_SARAFAN_CODE (contact)', present: true, problem: null },
    { kind: 'field', name: 'UF_CRM_SARAFAN_BALANCE (contact)', present: false, problem: null },
    { kind: 'event', name: 'ONCRMDEALUPDATE', present: true, problem: 'bound to https://elsewhere.example.com/b24/events' },
    { kind: 'placement', name: 'CRM_DEAL_DETAIL_TAB', present: true, problem: null },
    { kind: 'robot', name: 'sarafan_accrue', present: true, problem: null },
  ],
  registrationError: null,
  lastEventAt: '2026-12-03T09:55:00.000Z',
  reconciliation: { lastRunAt: '2026-12-03T09:57:00.000Z', lagSeconds: 180 },
  queue: { queued: 3, running: 1, dead: 1, oldestQueuedAt: '2026-12-03T08:00:00.000Z' },
  deadJobs: [{ id: 41, kind: 'projection', key: 'contact:5', attempts: 8, lastError: 'QUERY_LIMIT_EXCEEDED', updatedAt: '2026-12-02T10:00:00.000Z' }],
  ...over,
});
