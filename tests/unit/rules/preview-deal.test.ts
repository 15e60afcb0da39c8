import { describe, expect, it } from 'vitest';
import { previewDeal } from '../../../src/rules/preview-deal.js';
import { DEFAULT_PROGRAM, type Program } from '../../../src/rules/program.js';

const NOW = new Date('2026-12-03T09:00:00Z');
const DAY_MS = 86_400_000;

function program(referral: Partial<Program['referral']> = {}, rest: Partial<Program> = {}): Program {
  return { ...DEFAULT_PROGRAM, ...rest, referral: { ...DEFAULT_PROGRAM.referral, ...referral } };
}

const brief = (p: Program, amount: number, depth: number, categoryId?: number) => {
  const result = previewDeal(p, { amount, currency: 'RUB', depth, ...(categoryId === undefined ? {} : { categoryId }) }, NOW);
  return result.entries.map((e) => [e.beneficiary, e.level, e.amount, e.capped, e.status]);
};

describe('previewDeal', () => {
  it('prices with the loop rule: the default pays the direct referrer 10 %', () => {
    expect(brief(DEFAULT_PROGRAM, 100_000_00, 1)).toEqual([['referrer', 1, 10_000_00, 0, 'available']]);
  });

  it('a chain deeper than the levels pays the levels only; depth 0 pays no referral', () => {
    const p = program({ levels: [{ percent: 5 }, { fixed: 100 }] });
    expect(brief(p, 10_000_00, 5)).toEqual([
      ['referrer', 1, 500_00, 0, 'available'],
      ['referrer', 2, 100_00, 0, 'available'],
    ]);
    expect(brief(p, 10_000_00, 0)).toEqual([]);
  });

  it('shows what the cap per referral took, deepest level first, even all of a level', () => {
    const p = program({ levels: [{ percent: 5 }, { percent: 3 }, { percent: 2 }], capPerReferral: 6000 });
    expect(brief(p, 100_000_00, 3)).toEqual([
      ['referrer', 1, 5_000_00, 0, 'available'],
      ['referrer', 2, 1_000_00, 2_000_00, 'available'],
      ['referrer', 3, 0, 2_000_00, 'available'],
    ]);
  });

  it('holds referral rewards and the welcome bonus for holdDays; cashback is available at once', () => {
    const p = program({ referee: { fixed: 500 }, holdDays: 7 }, { cashback: { enabled: true, percent: 1 } });
    const result = previewDeal(p, { amount: 10_000_00, currency: 'RUB', depth: 1 }, NOW);
    expect(result.entries.map((e) => [e.beneficiary, e.amount, e.status, e.availableAt.getTime() - NOW.getTime()])).toEqual([
      ['referrer', 1_000_00, 'pending', 7 * DAY_MS],
      ['referee', 500_00, 'pending', 7 * DAY_MS],
      ['client', 100_00, 'available', 0],
    ]);
    expect(result.total).toBe(1_600_00);
  });

  it('a pipeline that does not count pays no referral; by default the deal is in one that counts', () => {
    const p = program({ categories: [3, 5] });
    expect(brief(p, 10_000_00, 1)).toEqual([['referrer', 1, 1_000_00, 0, 'available']]);
    expect(brief(p, 10_000_00, 1, 0)).toEqual([]);
    expect(brief(p, 10_000_00, 1, 5)).toEqual([['referrer', 1, 1_000_00, 0, 'available']]);
  });

  it('a deal below the minimum pays no referral', () => {
    expect(brief(program({ minDealAmount: 1000 }), 999_99, 1)).toEqual([]);
  });

  it('a deal in another currency is converted with the portal rates, and not priced without a rate', () => {
    const rates = [
      { currency: 'RUB', amount: '1', amountCnt: 1 },
      { currency: 'USD', amount: '90.5', amountCnt: 1 },
    ];
    const usd = previewDeal(DEFAULT_PROGRAM, { amount: 100_01, currency: 'USD', depth: 1 }, NOW, rates);
    // 100.01 USD × 90.5 = 9 050.905 RUB → 9 050.91 (half away from zero); 10 % of it = 905.091 → 905.09.
    expect(usd).toMatchObject({ priced: true, total: 905_09, fx: { currency: 'USD', amount: 100_01 } });
    expect(Number(usd.fx!.rate)).toBe(90.5);
    expect(previewDeal(DEFAULT_PROGRAM, { amount: 100_00, currency: 'GBP', depth: 1 }, NOW, rates)).toEqual({ priced: false, reason: 'currency_not_converted', entries: [], total: 0, fx: null });
    expect(previewDeal(DEFAULT_PROGRAM, { amount: 100_00, currency: 'USD', depth: 1 }, NOW)).toMatchObject({ priced: false, reason: 'currency_not_converted' });
    expect(previewDeal(DEFAULT_PROGRAM, { amount: 100_00, currency: 'RUB', depth: 1 }, NOW)).toMatchObject({ priced: true, total: 10_00, fx: null });
  });
});
