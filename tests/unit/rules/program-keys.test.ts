/**
 * The program keys of SPEC 5.1 applied by pure rules: rounding and conversion (money.ts,
 * convert-currency.ts), the referrer's monthly cap in the portal's time zone
 * (cap-referrer-month.ts) and the clamp overspend policy (clamp-overspend.ts). Boundaries first.
 */
import { describe, expect, it } from 'vitest';
import { capReferrerMonth, monthOf } from '../../../src/rules/cap-referrer-month.js';
import { clampOverspend } from '../../../src/rules/clamp-overspend.js';
import { convertDealAmount, crossRate, type RateRow } from '../../../src/rules/convert-currency.js';
import { issueCoupons } from '../../../src/rules/issue-coupons.js';
import { convertMinor, divideRates, percentOf } from '../../../src/rules/money.js';
import type { DesiredEntry } from '../../../src/rules/price-deal.js';

const MOSCOW = 180;

describe('rounding of percent rewards: exact product, once, half away from zero', () => {
  it.each<[number, number, number, string]>([
    [5, 10, 1, '10 % of 0.05 = 0.005 → 0.01'],
    [4, 10, 0, '10 % of 0.04 = 0.004 → 0.00'],
    [15, 10, 2, '0.015 → 0.02'],
    [14, 10, 1, '0.014 → 0.01'],
    [-5, 10, -1, 'negative halves go away from zero'],
    [333, 33.3333, 111, '33.3333 % of 3.33 = 1.10999889 → 1.11'],
    [100_000_00, 12.5, 12_500_00, 'a whole result is not rounded'],
    [1, 50, 1, '0.005 → 0.01'],
  ])('%i minor × %d %% = %i minor: %s', (amount, percent, expected) => {
    expect(percentOf(amount, percent)).toBe(expected);
  });
});

describe('conversion', () => {
  // The sandbox's default list: RUB base, USD 90, EUR 100; and a currency quoted per 100 units.
  const rates: RateRow[] = [
    { currency: 'RUB', amount: '1.0000', amountCnt: 1 },
    { currency: 'USD', amount: '90.0000', amountCnt: 1 },
    { currency: 'EUR', amount: '100.0000', amountCnt: 1 },
    { currency: 'KZT', amount: '18.5000', amountCnt: 100 },
  ];

  it.each<[string, string, string | null]>([
    ['USD', 'RUB', '90.0000000000'],
    ['RUB', 'USD', '0.0111111111'],
    ['EUR', 'USD', '1.1111111111'],
    ['KZT', 'RUB', '0.1850000000'],
    ['RUB', 'KZT', '5.4054054054'],
    ['RUB', 'RUB', '1'],
    ['GBP', 'RUB', null],
    ['RUB', 'GBP', null],
  ])('cross rate %s → %s is %s', (from, to, expected) => {
    expect(crossRate(rates, from, to)).toBe(expected);
  });

  it.each<[number, string, number]>([
    [100_00, '90.0000000000', 9000_00],
    [1, '0.0111111111', 0],
    [45, '0.0111111111', 0], // 0.4999999995 minor: just under the half
    [100_00, '0.0111111111', 111],
    [-100_00, '0.0111111111', -111],
  ])('%i minor × %s = %i minor', (amount, rate, expected) => {
    expect(convertMinor(amount, rate)).toBe(expected);
  });

  it('divides decimals exactly to 10 places, half away from zero', () => {
    expect(divideRates('2', '3')).toBe('0.6666666667');
    expect(divideRates('1', '0')).toBeNull();
  });

  it('prices a deal in another currency with today’s rate, or with the rate fixed on its first win', () => {
    expect(convertDealAmount({ amount: 1000_00, from: 'USD', to: 'RUB', rates, fixed: null })).toEqual({ ok: true, amount: 90_000_00, rate: '90.0000000000' });
    expect(convertDealAmount({ amount: 1000_00, from: 'USD', to: 'RUB', rates, fixed: { currency: 'USD', rate: '80.5' } })).toEqual({ ok: true, amount: 80_500_00, rate: '80.5' });
    // A rate fixed for another currency (the deal's currency was changed) is not reused.
    expect(convertDealAmount({ amount: 1000_00, from: 'EUR', to: 'RUB', rates, fixed: { currency: 'USD', rate: '80.5' } })).toEqual({ ok: true, amount: 100_000_00, rate: '100.0000000000' });
    expect(convertDealAmount({ amount: 5_00, from: 'RUB', to: 'RUB', rates: null, fixed: null })).toEqual({ ok: true, amount: 5_00, rate: '1' });
    expect(convertDealAmount({ amount: 5_00, from: 'GBP', to: 'RUB', rates, fixed: null })).toEqual({ ok: false });
    expect(convertDealAmount({ amount: 5_00, from: 'USD', to: 'RUB', rates: null, fixed: null })).toEqual({ ok: false });
  });
});

describe('monthOf: calendar months in the portal’s time zone', () => {
  it.each<[string, number, string, string]>([
    // Moscow (+03:00): 23:30 on 31 January is still January; 00:30 on 1 February is February.
    ['2026-01-31T20:30:00Z', MOSCOW, '2026-01-01T00:00:00+03:00', '2026-02-01T00:00:00+03:00'],
    ['2026-01-31T21:30:00Z', MOSCOW, '2026-02-01T00:00:00+03:00', '2026-03-01T00:00:00+03:00'],
    // The very first instant of a Moscow month belongs to it; the last before it does not.
    ['2026-01-31T21:00:00Z', MOSCOW, '2026-02-01T00:00:00+03:00', '2026-03-01T00:00:00+03:00'],
    ['2026-01-31T20:59:59.999Z', MOSCOW, '2026-01-01T00:00:00+03:00', '2026-02-01T00:00:00+03:00'],
    // UTC and a zone behind UTC.
    ['2026-01-31T23:30:00Z', 0, '2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z'],
    ['2026-02-01T02:00:00Z', -300, '2026-01-01T00:00:00-05:00', '2026-02-01T00:00:00-05:00'],
    // December rolls into the next year.
    ['2026-12-31T21:30:00Z', MOSCOW, '2027-01-01T00:00:00+03:00', '2027-02-01T00:00:00+03:00'],
  ])('%s at UTC%+d min is in [%s, %s)', (at, offset, from, to) => {
    const month = monthOf(new Date(at), offset);
    expect(month.from.toISOString()).toBe(new Date(from).toISOString());
    expect(month.to.toISOString()).toBe(new Date(to).toISOString());
  });
});

describe('capReferrerMonth', () => {
  const when = new Date('2026-03-01T00:00:00Z');
  const referral = (memberId: number, amount: number, level = 1): DesiredEntry => ({ memberId, reason: 'referral', level, amount, availableAt: when });

  it.each<[string, number | null, number, number, number, number]>([
    // name, cap, used by other deals, desired, paid, capped
    ['no cap', null, 10_000_00, 500_00, 500_00, 0],
    ['below the cap', 1000_00, 300_00, 500_00, 500_00, 0],
    ['cap exactly reached', 1000_00, 500_00, 500_00, 500_00, 0],
    ['one kopeck over', 1000_00, 500_01, 500_00, 499_99, 1],
    ['cap already used up', 1000_00, 1000_00, 500_00, 0, 500_00],
    ['others above the cap (cap lowered later) pay nothing more', 1000_00, 1200_00, 500_00, 0, 500_00],
  ])('%s', (_name, cap, used, desired, paid, capped) => {
    const [entry] = capReferrerMonth([referral(7, desired)], cap, new Map([[7, used]]));
    expect(entry).toMatchObject({ memberId: 7, amount: paid, capped });
  });

  it('caps per referrer, leaves welcome and cashback alone, and counts earlier entries of the same deal', () => {
    const out = capReferrerMonth(
      [referral(7, 600_00), referral(8, 600_00, 2), { memberId: 9, reason: 'welcome', level: 0, amount: 900_00, availableAt: when }, referral(7, 600_00, 3)],
      1000_00,
      new Map([[8, 900_00]]),
    );
    expect(out.map((e) => [e.memberId, e.amount, e.capped])).toEqual([
      [7, 600_00, 0],
      [8, 100_00, 500_00],
      [9, 900_00, 0],
      [7, 400_00, 200_00],
    ]);
  });
});

describe('clampOverspend', () => {
  it.each<[string, 'allow_negative' | 'clamp', number, number, number, number]>([
    // name, policy, balance, entry, written, shortfall
    ['allow_negative writes it all', 'allow_negative', 100_00, -500_00, -500_00, 0],
    ['clamp: enough bonus held', 'clamp', 500_00, -500_00, -500_00, 0],
    ['clamp: exactly the balance', 'clamp', 500_00, -500_00, -500_00, 0],
    ['clamp: part spent', 'clamp', 100_00, -500_00, -100_00, 400_00],
    ['clamp: all spent', 'clamp', 0, -500_00, 0, 500_00],
    ['clamp: already negative', 'clamp', -50_00, -500_00, 0, 500_00],
    ['credits are never clamped', 'clamp', 0, 300_00, 300_00, 0],
  ])('%s', (_name, policy, balance, amount, written, shortfall) => {
    const [e] = clampOverspend(policy, [{ memberId: 1, amount }], new Map([[1, balance]]));
    expect(e).toEqual({ memberId: 1, amount: written, shortfall });
  });

  it('meets a run’s credits before its reversals, in input order otherwise', () => {
    const out = clampOverspend(
      'clamp',
      [
        { memberId: 1, amount: -300_00 },
        { memberId: 1, amount: 100_00 },
        { memberId: 1, amount: -300_00 },
      ],
      new Map([[1, 250_00]]),
    );
    expect(out.map((e) => [e.amount, e.shortfall])).toEqual([
      [-300_00, 0],
      [100_00, 0],
      [-50_00, 250_00],
    ]);
  });
});

describe('issueCoupons: a coupon after every N qualified referrals', () => {
  const rule = { everyReferrals: 3, valueMinor: 500_00 };
  const issued = (id: number, milestone: number, status: 'issued' | 'reversed' = 'issued') => ({ id, milestone, value: 500_00, status });

  it.each<[string, number, number[]]>([
    ['none below the first milestone', 2, []],
    ['the first exactly at N', 3, [1]],
    ['still one at 2N − 1', 5, [1]],
    ['two at 2N', 6, [1, 2]],
    ['several milestones at once', 10, [1, 2, 3]],
  ])('%s (%i qualified)', (_name, qualified, milestones) => {
    const plan = issueCoupons({ memberId: 7, rule, qualified, coupons: [], entries: [] });
    expect(plan.issue).toEqual(milestones.map((milestone) => ({ milestone, value: 500_00 })));
    expect(plan.entries).toEqual(milestones.map((m) => ({ milestone: m, amount: 500_00, kind: 'credit', idempotencyKey: `coupon:7:${m}:0` })));
  });

  it('writes nothing again once issued and credited', () => {
    expect(issueCoupons({ memberId: 7, rule, qualified: 4, coupons: [issued(1, 1)], entries: [{ level: 1, amount: 500_00 }] })).toEqual({ issue: [], status: [], entries: [] });
  });

  it('reverses a coupon when the count drops below its milestone, and re-issues it when reached again', () => {
    const down = issueCoupons({ memberId: 7, rule, qualified: 2, coupons: [issued(1, 1)], entries: [{ level: 1, amount: 500_00 }] });
    expect(down).toEqual({ issue: [], status: [{ id: 1, status: 'reversed' }], entries: [{ milestone: 1, amount: -500_00, kind: 'reversal', idempotencyKey: 'coupon:7:1:1' }] });
    const up = issueCoupons({ memberId: 7, rule, qualified: 3, coupons: [issued(1, 1, 'reversed')], entries: [{ level: 1, amount: 500_00 }, { level: 1, amount: -500_00 }] });
    expect(up).toEqual({ issue: [], status: [{ id: 1, status: 'issued' }], entries: [{ milestone: 1, amount: 500_00, kind: 'correction', idempotencyKey: 'coupon:7:1:2' }] });
  });

  it('keeps the value a coupon was issued with, counts a clamped shortfall as taken back, and changes nothing without a rule', () => {
    const plan = issueCoupons({ memberId: 7, rule: { everyReferrals: 3, valueMinor: 900_00 }, qualified: 3, coupons: [issued(1, 1, 'reversed')], entries: [{ level: 1, amount: 500_00 }, { level: 1, amount: -100_00, shortfall: 400_00 }] });
    expect(plan.entries).toEqual([{ milestone: 1, amount: 500_00, kind: 'correction', idempotencyKey: 'coupon:7:1:2' }]);
    expect(issueCoupons({ memberId: 7, rule: null, qualified: 0, coupons: [issued(1, 1)], entries: [{ level: 1, amount: 500_00 }] })).toEqual({ issue: [], status: [], entries: [] });
  });
});
