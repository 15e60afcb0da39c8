/** Answers of the API as the server gives them (the shapes of src/contract/api.ts). */
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
