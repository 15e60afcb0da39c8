import { describe, expect, it } from 'vitest';
import { checkAdjustment } from '../../../src/rules/adjustment.js';
import { checkRedemption, dealAcceptsRedemption, dealRedemptionLimit, mostRedeemable, redeemedOnDeal, redemptionFacts, redemptionReturns, type LedgerLine } from '../../../src/rules/redemption.js';

const redemption = (memberId: number, amount: number): LedgerLine => ({ memberId, reason: 'redemption', amount });
const reward = (memberId: number, amount: number): LedgerLine => ({ memberId, reason: 'referral', amount });

describe('which deals accept a redemption', () => {
  it.each([
    [{ stageSemantic: 'P' as const, deleted: false }, true],
    [{ stageSemantic: 'S' as const, deleted: false }, true],
    [{ stageSemantic: 'F' as const, deleted: false }, false],
    [{ stageSemantic: 'P' as const, deleted: true }, false],
    [{ stageSemantic: 'S' as const, deleted: true }, false],
  ])('%j → %s', (deal, open) => {
    expect(dealAcceptsRedemption(deal)).toBe(open);
  });
});

describe('checkRedemption', () => {
  const base = { amount: 100_00, available: 1000_00, dealAmount: 1000_00, maxPercentOfDeal: 50, dealEntries: [] as LedgerLine[], dealOpen: true };
  it.each<[string, Partial<typeof base>, string]>([
    ['within everything', {}, 'ok'],
    ['exactly the limit', { amount: 500_00 }, 'ok'],
    ['one kopeck over the limit', { amount: 500_01 }, 'over_deal_limit'],
    ['the limit counts earlier redemptions on the deal', { amount: 400_01, dealEntries: [redemption(1, -100_00), reward(2, 50_00)] }, 'over_deal_limit'],
    ['a returned redemption frees the limit', { amount: 500_00, dealEntries: [redemption(1, -100_00), redemption(1, 100_00)] }, 'ok'],
    ['exactly the balance', { amount: 300_00, available: 300_00 }, 'ok'],
    ['one kopeck over the balance', { amount: 300_01, available: 300_00 }, 'insufficient_balance'],
    ['a negative balance', { available: -5_00 }, 'insufficient_balance'],
    ['a closed deal first of all', { dealOpen: false, amount: 999_999_00, available: 0 }, 'deal_closed'],
    ['over the limit before the balance', { amount: 600_00, available: 0 }, 'over_deal_limit'],
    ['a deal of zero allows nothing', { dealAmount: 0, amount: 1 }, 'over_deal_limit'],
    ['0 % allows nothing', { maxPercentOfDeal: 0, amount: 1 }, 'over_deal_limit'],
    ['100 % allows the whole deal', { maxPercentOfDeal: 100, amount: 1000_00, available: 1000_00 }, 'ok'],
  ])('%s', (_name, over, want) => {
    const verdict = checkRedemption({ ...base, ...over });
    expect(verdict.ok ? 'ok' : verdict.reason).toBe(want);
  });

  it('refuses a non-positive or fractional amount as a programming error', () => {
    for (const amount of [0, -1, 1.5]) expect(() => checkRedemption({ ...base, amount })).toThrow(RangeError);
  });

  it('rounds the limit like every other percent (half away from zero)', () => {
    expect(dealRedemptionLimit(101, 50)).toBe(51);
    expect(dealRedemptionLimit(99_99, 33.33)).toBe(33_33);
  });
});

describe('mostRedeemable', () => {
  const base = { available: 1000_00, dealAmount: 1000_00, maxPercentOfDeal: 50, dealEntries: [] as LedgerLine[], dealOpen: true };
  it.each<[string, Partial<typeof base>, number]>([
    ['the limit when the balance is larger', {}, 500_00],
    ['the balance when it is smaller', { available: 120_00 }, 120_00],
    ['what the limit leaves after earlier redemptions', { dealEntries: [redemption(1, -450_00)] }, 50_00],
    ['nothing (or less) when the limit is used up', { dealEntries: [redemption(1, -500_00)] }, 0],
    ['less than nothing with a negative balance', { available: -10_00 }, -10_00],
  ])('%s', (_name, over, want) => {
    expect(mostRedeemable({ ...base, ...over })).toBe(want);
  });
});

describe('redemptionReturns', () => {
  it('returns nothing while the deal is open', () => {
    expect(redemptionReturns({ dealId: 5, closed: false, entries: [redemption(1, -10)] })).toEqual([]);
  });

  it('returns the net of each member once, with a key from the snapshot', () => {
    const entries = [redemption(2, -30), redemption(1, -10), redemption(1, -5), reward(3, 100)];
    expect(redemptionReturns({ dealId: 5, closed: true, entries })).toEqual([
      { memberId: 1, amount: 15, idempotencyKey: 'deal:5:redemption-return:1:2' },
      { memberId: 2, amount: 30, idempotencyKey: 'deal:5:redemption-return:2:1' },
    ]);
    // After the return the net is zero: settling again plans nothing.
    const after = [...entries, redemption(1, 15), redemption(2, 30)];
    expect(redemptionReturns({ dealId: 5, closed: true, entries: after })).toEqual([]);
    expect(redeemedOnDeal(after)).toBe(0);
  });

  it('a redemption made after a return (deal re-opened) is returned on the next loss, under a new key', () => {
    const entries = [redemption(1, -10), redemption(1, 10), redemption(1, -7)];
    expect(redemptionReturns({ dealId: 9, closed: true, entries })).toEqual([{ memberId: 1, amount: 7, idempotencyKey: 'deal:9:redemption-return:1:3' }]);
  });
});

describe('checkAdjustment', () => {
  it.each<[number, number, string]>([
    [100, 0, 'credit'],
    [100, -500, 'credit'],
    [-100, 100, 'correction'],
    [-101, 100, 'insufficient_balance'],
    [-1, -5, 'insufficient_balance'],
  ])('%i with %i available → %s', (amount, available, want) => {
    const verdict = checkAdjustment({ amount, available });
    expect(verdict.ok ? verdict.kind : verdict.reason).toBe(want);
  });

  it('refuses zero or a fraction as a programming error', () => {
    expect(() => checkAdjustment({ amount: 0, available: 0 })).toThrow(RangeError);
    expect(() => checkAdjustment({ amount: 0.5, available: 0 })).toThrow(RangeError);
  });
});

describe('redemptionFacts', () => {
  const deal = { stageSemantic: 'P' as const, deleted: false, amount: 1000_00, currency: 'RUB' };
  const base = { programCurrency: 'RUB', maxPercentOfDeal: 50, rates: null, available: 300_00, lapsed: 0, dealEntries: [] as LedgerLine[] };

  it('takes the deal amount as it is in the program currency, and the balance net of lapsed bonus', () => {
    expect(redemptionFacts({ ...base, deal, lapsed: -50_00 })).toEqual({
      ok: true,
      facts: { available: 250_00, dealAmount: 1000_00, maxPercentOfDeal: 50, dealEntries: [], dealOpen: true },
    });
  });

  it('an empty currency is the program currency', () => {
    expect(redemptionFacts({ ...base, deal: { ...deal, currency: '' } })).toMatchObject({ ok: true, facts: { dealAmount: 1000_00 } });
  });

  it('converts with the fixed rate of a won deal, else the rates given; none is currency_not_converted while open', () => {
    const usd = { ...deal, amount: 10_00, currency: 'USD' };
    expect(redemptionFacts({ ...base, deal: { ...usd, fxCurrency: 'USD', fxRate: '90' } })).toMatchObject({ ok: true, facts: { dealAmount: 900_00 } });
    const rates = [
      { currency: 'RUB', amount: '1', amountCnt: 1 },
      { currency: 'USD', amount: '80', amountCnt: 1 },
    ];
    expect(redemptionFacts({ ...base, deal: usd, rates })).toMatchObject({ ok: true, facts: { dealAmount: 800_00 } });
    expect(redemptionFacts({ ...base, deal: usd })).toEqual({ ok: false, reason: 'currency_not_converted' });
    // A lost deal is closed whatever its currency: the check says deal_closed.
    expect(redemptionFacts({ ...base, deal: { ...usd, stageSemantic: 'F' } })).toMatchObject({ ok: true, facts: { dealOpen: false } });
  });

  it('mostRedeemable of the facts is what checkRedemption accepts, and a kopeck more it refuses', () => {
    const r = redemptionFacts({ ...base, deal });
    if (!r.ok) throw new Error('not ok');
    const most = mostRedeemable(r.facts);
    expect(most).toBe(300_00);
    expect(checkRedemption({ ...r.facts, amount: most })).toEqual({ ok: true });
    expect(checkRedemption({ ...r.facts, amount: most + 1 })).toEqual({ ok: false, reason: 'insufficient_balance' });
  });
});
