import { describe, expect, it } from 'vitest';
import type { Program } from '../../../src/rules/program.js';
import { priceDeal, qualifies, tierFor, tierProgressFor, type ClientDeal, type DesiredEntry, type PricingInput } from '../../../src/rules/price-deal.js';
import { DAY, T0, at, program } from './rules-fixtures.js';

const CLIENT = 1;
const [R1, R2, R3, R4] = [101, 102, 103, 104];

type Overrides = Omit<Partial<PricingInput>, 'deal'> & { deal?: Partial<PricingInput['deal']> };

/** Deal 10 of client 1, won now for 1000.00, referred by 101 ← 102 ← 103 at T0. */
function input(o: Overrides = {}): PricingInput {
  const deal = { dealId: 10, amount: 100000, categoryId: 0, won: true, wonAt: T0, ...o.deal };
  return {
    program: o.program ?? program(),
    deal,
    clientMemberId: o.clientMemberId === undefined ? CLIENT : o.clientMemberId,
    clientDeals: o.clientDeals ?? [{ dealId: deal.dealId, won: deal.won, firstWonAt: deal.wonAt, amount: deal.amount }],
    referral: o.referral === undefined ? { createdAt: T0, chain: [R1, R2, R3] } : o.referral,
    now: o.now ?? T0,
  };
}

const referral = (memberId: number, level: number, amount: number, availableAt = T0): DesiredEntry => ({ memberId, reason: 'referral', level, amount, availableAt });
const welcome = (amount: number, availableAt = T0): DesiredEntry => ({ memberId: CLIENT, reason: 'welcome', level: 0, amount, availableAt });
const cashback = (amount: number, availableAt = T0): DesiredEntry => ({ memberId: CLIENT, reason: 'cashback', level: 0, amount, availableAt });

const levels = (...l: unknown[]) => program({ referral: { levels: l } });

describe('priceDeal: the referral reward', () => {
  it.each<[string, Overrides, DesiredEntry[]]>([
    ['the default: 10 % of the first won deal to the direct referrer', {}, [referral(R1, 1, 10000)]],
    ['nothing for a deal that is not won', { deal: { won: false } }, []],
    ['nothing without a referral', { referral: null }, []],
    ['nothing with an empty chain', { referral: { createdAt: T0, chain: [] } }, []],
    ['nothing when referral rewards are off', { program: program({ referral: { enabled: false } }) }, []],
    ['10 % rounded half away from zero', { deal: { amount: 12345 } }, [referral(R1, 1, 1235)]],
    ['nothing for 10 % of 4 kopecks', { deal: { amount: 4 } }, []],
    ['a zero-amount deal pays no percent', { deal: { amount: 0 } }, []],
    ['a negative amount pays nothing', { deal: { amount: -100000 } }, []],
    ['a fixed level in minor units', { program: levels({ fixed: 500.5 }) }, [referral(R1, 1, 50050)]],
    ['a fixed level pays on a zero-amount deal when there is no minimum', { program: levels({ fixed: 5 }), deal: { amount: 0 } }, [referral(R1, 1, 500)]],
    ['each level to its ancestor', { program: levels({ percent: 10 }, { percent: 5 }, { fixed: 100 }) }, [referral(R1, 1, 10000), referral(R2, 2, 5000), referral(R3, 3, 10000)]],
    ['levels beyond the chain pay nothing', { program: levels({ percent: 10 }, { percent: 5 }, { percent: 2 }), referral: { createdAt: T0, chain: [R1] } }, [referral(R1, 1, 10000)]],
    ['a chain longer than the levels pays the levels only', { program: levels({ percent: 10 }, { percent: 5 }), referral: { createdAt: T0, chain: [R1, R2, R3, R4] } }, [referral(R1, 1, 10000), referral(R2, 2, 5000)]],
    ['a level whose percent rounds to zero is left out', { program: levels({ percent: 10 }, { percent: 0.0001 }), deal: { amount: 4999 } }, [referral(R1, 1, 500)]],
  ])('%s', (_name, o, expected) => {
    expect(priceDeal(input(o))).toEqual(expected);
  });

  it.each<[string, number, number, boolean]>([
    ['equal to the minimum', 1000.5, 100050, true],
    ['a kopeck below the minimum', 1000.5, 100049, false],
    ['above the minimum', 1000, 100001, true],
    ['zero minimum, zero amount, fixed reward', 0, 0, true],
  ])('minDealAmount: %s', (_name, minDealAmount, amount, pays) => {
    const p = program({ referral: { minDealAmount, levels: [{ fixed: 1 }] } });
    expect(priceDeal(input({ program: p, deal: { amount } }))).toEqual(pays ? [referral(R1, 1, 100)] : []);
  });

  it.each<[number[], number, boolean]>([
    [[], 7, true],
    [[1, 2], 2, true],
    [[1, 2], 3, false],
    [[0], 0, true],
    [[1], 0, false],
  ])('categories %j, deal in category %d → pays %s', (categories, categoryId, pays) => {
    const p = program({ referral: { categories } });
    expect(priceDeal(input({ program: p, deal: { categoryId } })).length).toBe(pays ? 1 : 0);
  });

  describe('capPerReferral', () => {
    const p = (cap: number | null) => program({ referral: { levels: [{ percent: 10 }, { percent: 5 }, { fixed: 100 }], capPerReferral: cap } });
    it.each<[number | null, number[]]>([
      [null, [10000, 5000, 10000]],
      [250, [10000, 5000, 10000]], // exactly the sum
      [249.99, [10000, 5000, 9999]],
      [200, [10000, 5000, 5000]], // the deepest level gives way first
      [150, [10000, 5000]], // … until it is gone
      [120, [10000, 2000]], // then the next one
      [50, [5000]],
      [0.01, [1]],
    ])('cap %j → %j', (cap, amounts) => {
      expect(priceDeal(input({ program: p(cap) })).map((e) => e.amount)).toEqual(amounts);
    });

    it('does not cap the welcome bonus or cashback', () => {
      const capped = program({ referral: { capPerReferral: 10, referee: { fixed: 50 } }, cashback: { enabled: true, percent: 5 } });
      expect(priceDeal(input({ program: capped }))).toEqual([referral(R1, 1, 1000), welcome(5000), cashback(5000)]);
    });
  });

  it('holds referral rewards and the welcome bonus holdDays, but not cashback', () => {
    const p = program({ referral: { holdDays: 14, referee: { percent: 5 } }, cashback: { enabled: true, percent: 1 } });
    const now = at(3, 1234);
    const hold = new Date(now.getTime() + 14 * DAY);
    expect(priceDeal(input({ program: p, now }))).toEqual([referral(R1, 1, 10000, hold), welcome(5000, hold), cashback(1000, now)]);
  });

  it('does not let the caller mutate availableAt through `now`', () => {
    const now = new Date(T0);
    const [entry] = priceDeal(input({ program: program({ cashback: { enabled: true, percent: 1 }, referral: { enabled: false } }), now }));
    now.setTime(0);
    expect(entry?.availableAt).toEqual(T0);
  });
});

describe('priceDeal: the welcome bonus', () => {
  it.each<[string, Overrides, DesiredEntry[]]>([
    ['a percent of the deal to the client', { program: program({ referral: { referee: { percent: 5 } } }) }, [referral(R1, 1, 10000), welcome(5000)]],
    ['a fixed amount to the client', { program: program({ referral: { referee: { fixed: 300 } } }) }, [referral(R1, 1, 10000), welcome(30000)]],
    ['not without a client member', { program: program({ referral: { referee: { fixed: 300 } } }), clientMemberId: null }, [referral(R1, 1, 10000)]],
    ['not when the deal does not qualify', { program: program({ referral: { referee: { fixed: 300 }, categories: [5] } }) }, []],
    ['not without a referral', { program: program({ referral: { referee: { fixed: 300 } } }), referral: null }, []],
  ])('%s', (_name, o, expected) => {
    expect(priceDeal(input(o))).toEqual(expected);
  });
});

describe('qualifies / first_won_deal', () => {
  const won = (dealId: number, day: number, amount = 100000): ClientDeal => ({ dealId, won: true, firstWonAt: at(day), amount });
  const lost = (dealId: number, day: number | null): ClientDeal => ({ dealId, won: false, firstWonAt: day === null ? null : at(day), amount: 100000 });
  const dealOf = (d: ClientDeal) => ({ dealId: d.dealId, amount: d.amount, categoryId: 0, won: d.won, wonAt: d.firstWonAt ?? T0 });
  const p = program();

  it.each<[string, ClientDeal[], number, boolean]>([
    ['the earliest won deal qualifies', [won(10, 1), won(11, 2)], 10, true],
    ['a later won deal does not', [won(10, 1), won(11, 2)], 11, false],
    ['order of the list does not matter', [won(11, 2), won(10, 1)], 11, false],
    ['ties go to the lower deal id', [won(11, 1), won(10, 1)], 10, true],
    ['… and not to the higher one', [won(11, 1), won(10, 1)], 11, false],
    ['the next won deal takes over when the first is un-won', [lost(10, 1), won(11, 2)], 11, true],
    ['an un-won deal never qualifies', [lost(10, 1), won(11, 2)], 10, false],
    ['a deal not won before the others qualifies once they are all lost', [lost(10, 1), lost(11, 2), won(12, 3)], 12, true],
  ])('%s', (_name, deals, dealId, expected) => {
    const deal = dealOf(deals.find((d) => d.dealId === dealId)!);
    expect(qualifies(p, deal, T0, deals)).toBe(expected);
    // priceDeal agrees.
    expect(priceDeal(input({ program: p, deal, clientDeals: deals })).length).toBe(expected ? 1 : 0);
  });

  it('trusts the deal as given over a stale copy in clientDeals', () => {
    const deal = { dealId: 10, amount: 100000, categoryId: 0, won: true, wonAt: at(1) };
    expect(qualifies(p, deal, T0, [lost(10, 1), won(11, 2)])).toBe(true);
    expect(qualifies(p, { ...deal, won: false }, T0, [won(10, 1)])).toBe(false);
  });

  it('takes a deal missing from clientDeals as won at wonAt', () => {
    expect(qualifies(p, { dealId: 12, amount: 1, categoryId: 0, won: true, wonAt: at(0) }, T0, [won(11, 2)])).toBe(true);
    expect(qualifies(p, { dealId: 12, amount: 1, categoryId: 0, won: true, wonAt: at(3) }, T0, [won(11, 2)])).toBe(false);
  });
});

describe('qualifies / every_won_deal', () => {
  const p = program({ referral: { qualify: 'every_won_deal', windowDays: 30 } });
  it.each<[string, Date, boolean]>([
    ['won at the referral', at(0), true],
    ['won a day later', at(1), true],
    ['won exactly windowDays later', at(30), true],
    ['won a millisecond after the window', at(30, 1), false],
    ['won a millisecond before the referral', at(0, -1), false],
  ])('%s', (_name, firstWonAt, expected) => {
    const deal = { dealId: 10, amount: 100000, categoryId: 0, won: true, wonAt: firstWonAt };
    const clientDeals = [{ dealId: 10, won: true, firstWonAt, amount: 100000 }];
    expect(qualifies(p, deal, T0, clientDeals)).toBe(expected);
  });

  it('judges by the first win, so a deal re-won after the window still qualifies', () => {
    const deal = { dealId: 10, amount: 100000, categoryId: 0, won: true, wonAt: at(90) };
    expect(qualifies(p, deal, T0, [{ dealId: 10, won: true, firstWonAt: at(5), amount: 100000 }])).toBe(true);
    expect(qualifies(p, deal, T0, [{ dealId: 10, won: true, firstWonAt: at(45), amount: 100000 }])).toBe(false);
  });

  it('pays every won deal in the window, not only the first', () => {
    const deals: ClientDeal[] = [
      { dealId: 10, won: true, firstWonAt: at(1), amount: 100000 },
      { dealId: 11, won: true, firstWonAt: at(2), amount: 50000 },
    ];
    expect(priceDeal(input({ program: p, deal: { dealId: 11, amount: 50000, wonAt: at(2) }, clientDeals: deals }))).toEqual([referral(R1, 1, 5000)]);
  });
});

describe('priceDeal: cashback', () => {
  const tiered = (basis: 'won_amount' | 'won_count', percent?: number): Program =>
    program({
      referral: { enabled: false },
      cashback: percent === undefined ? { enabled: true } : { enabled: true, percent },
      tiers: {
        basis,
        levels:
          basis === 'won_amount'
            ? [
                { name: 'Silver', from: 100, cashbackPercent: 1 },
                { name: 'Gold', from: 1000, cashbackPercent: 3 },
                { name: 'Platinum', from: 5000.5, cashbackPercent: 5 },
              ]
            : [
                { name: 'Silver', from: 1, cashbackPercent: 1 },
                { name: 'Gold', from: 3, cashbackPercent: 3 },
              ],
      },
    });
  const others = (amounts: number[], won = true): ClientDeal[] => amounts.map((amount, i) => ({ dealId: 20 + i, won, firstWonAt: at(-1 - i), amount }));
  const priceWith = (p: Program, amount: number, otherDeals: ClientDeal[]) =>
    priceDeal(input({ program: p, referral: null, deal: { amount }, clientDeals: [...otherDeals, { dealId: 10, won: true, firstWonAt: T0, amount }] }));

  it.each<[string, number, ClientDeal[], number | null]>([
    ['below the first tier: the plain percent', 9999, [], 200],
    ['exactly the first tier (this deal counts)', 10000, [], 100],
    ['a kopeck below Gold', 50000, others([49999]), 500],
    ['exactly Gold', 50000, others([50000]), 1500],
    ['un-won deals do not count', 50000, [...others([50000], false), ...others([1])], 500],
    ['a decimal from: a kopeck below Platinum', 100000, others([400049]), 3000],
    ['a decimal from: exactly Platinum', 100000, others([400050]), 5000],
  ])('won_amount: %s', (_name, amount, otherDeals, expected) => {
    expect(priceWith(tiered('won_amount', 2), amount, otherDeals)).toEqual(expected === null ? [] : [cashback(expected)]);
  });

  it.each<[number, number]>([
    [0, 1000], // this deal alone: 1 won deal, Silver
    [1, 1000], // 2 won deals, still Silver
    [2, 3000], // 3 won deals, Gold
  ])('won_count with %d other won deals → %d', (n, expected) => {
    expect(priceWith(tiered('won_count', 2), 100000, others(Array.from({ length: n }, () => 1)))).toEqual([cashback(expected)]);
  });

  it.each<[string, Program, number | null, DesiredEntry[]]>([
    ['the plain percent without tiers', program({ referral: { enabled: false }, cashback: { enabled: true, percent: 2.5 } }), CLIENT, [cashback(125)]],
    ['nothing when disabled, whatever the percent', program({ referral: { enabled: false }, cashback: { enabled: false, percent: 5 } }), CLIENT, []],
    ['nothing without a client member', program({ referral: { enabled: false }, cashback: { enabled: true, percent: 5 } }), null, []],
    ['0 % below the first tier without a plain percent', tiered('won_amount'), CLIENT, []],
    ['alongside the referral reward, whatever the category rules', program({ referral: { categories: [9] }, cashback: { enabled: true, percent: 1 } }), CLIENT, [cashback(50)]],
  ])('%s', (_name, p, clientMemberId, expected) => {
    // 50.00: below the 100.00 of the first tier.
    expect(priceDeal(input({ program: p, clientMemberId, deal: { amount: 5000 } }))).toEqual(expected);
  });

  it('pays no cashback on a negative amount', () => {
    expect(priceDeal(input({ program: program({ cashback: { enabled: true, percent: 5 } }), deal: { amount: -5000 } }))).toEqual([]);
  });
});

describe('tierFor', () => {
  const amountTiers = program({
    tiers: {
      levels: [
        { name: 'Silver', from: 0, cashbackPercent: 1 },
        { name: 'Gold', from: 1000.5, cashbackPercent: 3 },
        { name: 'Platinum', from: 5000, cashbackPercent: 5 },
      ],
    },
  });
  const countTiers = program({ tiers: { basis: 'won_count', levels: [{ name: 'Regular', from: 2, cashbackPercent: 1 }, { name: 'VIP', from: 5, cashbackPercent: 2 }] } });
  const deals = (amounts: number[], won = true): ClientDeal[] => amounts.map((amount, i) => ({ dealId: i + 1, won, firstWonAt: won ? at(i) : null, amount }));

  it.each<[string, Program, ClientDeal[], ReturnType<typeof tierFor>]>([
    ['no tiers in the program', program(), deals([10 ** 9]), null],
    ['a new client sits in a from-0 tier', amountTiers, [], { name: 'Silver', next: { name: 'Gold', from: 1000.5 } }],
    ['a kopeck below Gold', amountTiers, deals([50000, 50049]), { name: 'Silver', next: { name: 'Gold', from: 1000.5 } }],
    ['exactly Gold', amountTiers, deals([50000, 50050]), { name: 'Gold', next: { name: 'Platinum', from: 5000 } }],
    ['the top tier has no next', amountTiers, deals([500000]), { name: 'Platinum', next: null }],
    ['lost deals do not count', amountTiers, deals([500000], false), { name: 'Silver', next: { name: 'Gold', from: 1000.5 } }],
    ['below the first count tier', countTiers, deals([1]), null],
    ['exactly the first count tier', countTiers, deals([1, 1]), { name: 'Regular', next: { name: 'VIP', from: 5 } }],
    ['the count ignores amounts', countTiers, deals([0, 0, 0, 0, 0]), { name: 'VIP', next: null }],
  ])('%s', (_name, p, clientDeals, expected) => {
    expect(tierFor(p, clientDeals)).toEqual(expected);
  });
});

describe('tierProgressFor', () => {
  const amountTiers = program({ tiers: { levels: [{ name: 'Silver', from: 1000, cashbackPercent: 1 }, { name: 'Gold', from: 1000.5, cashbackPercent: 3 }] } });
  const countTiers = program({ tiers: { basis: 'won_count', levels: [{ name: 'Regular', from: 2, cashbackPercent: 1 }, { name: 'VIP', from: 5, cashbackPercent: 2 }] } });
  const deals = (amounts: number[], won = true): ClientDeal[] => amounts.map((amount, i) => ({ dealId: i + 1, won, firstWonAt: won ? at(i) : null, amount }));

  it.each<[string, Program, ClientDeal[], ReturnType<typeof tierProgressFor>]>([
    ['no tiers in the program', program(), deals([10 ** 9]), null],
    ['nothing won: on the way to the first tier', amountTiers, [], { basis: 'won_amount', value: 0, nextFrom: 1000 }],
    ['a kopeck below the first tier (value in minor units)', amountTiers, deals([99999]), { basis: 'won_amount', value: 99999, nextFrom: 1000 }],
    ['exactly the first tier: the next is Gold', amountTiers, deals([100000]), { basis: 'won_amount', value: 100000, nextFrom: 1000.5 }],
    ['the top tier has no next', amountTiers, deals([100050]), { basis: 'won_amount', value: 100050, nextFrom: null }],
    ['lost deals do not count', amountTiers, deals([100050], false), { basis: 'won_amount', value: 0, nextFrom: 1000 }],
    ['counts won deals on a count basis', countTiers, deals([7, 7, 7]), { basis: 'won_count', value: 3, nextFrom: 5 }],
  ])('%s', (_name, p, clientDeals, expected) => {
    expect(tierProgressFor(p, clientDeals)).toEqual(expected);
  });
});
