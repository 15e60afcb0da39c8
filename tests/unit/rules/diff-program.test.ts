import { describe, expect, it } from 'vitest';
import { diffProgram } from '../../../src/rules/diff-program.js';
import { DEFAULT_PROGRAM, type Program } from '../../../src/rules/program.js';

const base = (): Program => structuredClone(DEFAULT_PROGRAM) as Program;

describe('diffProgram', () => {
  it('equal documents: no changes', () => {
    expect(diffProgram(base(), base())).toEqual([]);
    expect(diffProgram(null, null)).toEqual([]);
  });

  it('a changed leaf is named by its dotted path', () => {
    const after = base();
    after.referral.holdDays = 14;
    after.currency = 'USD';
    expect(diffProgram(base(), after)).toEqual([
      { path: 'currency', from: 'RUB', to: 'USD' },
      { path: 'referral.holdDays', from: 0, to: 14 },
    ]);
  });

  it('arrays are compared by index: a changed level, an added level, a removed level', () => {
    const before = base();
    before.referral.levels = [{ percent: 10 }, { percent: 5 }];
    const after = base();
    after.referral.levels = [{ percent: 12 }, { percent: 5 }, { fixed: 100 }];
    expect(diffProgram(before, after)).toEqual([
      { path: 'referral.levels.0.percent', from: 10, to: 12 },
      { path: 'referral.levels.2', to: { fixed: 100 } },
    ]);
    expect(diffProgram(after, before)).toEqual([
      { path: 'referral.levels.0.percent', from: 12, to: 10 },
      { path: 'referral.levels.2', from: { fixed: 100 } },
    ]);
  });

  it('a level switched from percent to fixed: one key removed, one added', () => {
    const after = base();
    after.referral.levels = [{ fixed: 500 }];
    expect(diffProgram(base(), after)).toEqual([
      { path: 'referral.levels.0.fixed', to: 500 },
      { path: 'referral.levels.0.percent', from: 10 },
    ]);
  });

  it('a value that changes kind is one change of the whole value', () => {
    const after = base();
    after.referral.referee = { fixed: 500 };
    after.coupons = { everyReferrals: 3, value: 1000 };
    expect(diffProgram(base(), after)).toEqual([
      { path: 'referral.referee', from: null, to: { fixed: 500 } },
      { path: 'coupons', from: null, to: { everyReferrals: 3, value: 1000 } },
    ]);
    expect(diffProgram({ a: [1] }, { a: { 0: 1 } })).toEqual([{ path: 'a', from: [1], to: { 0: 1 } }]);
  });

  it('added and removed keys (an optional cashback percent, a key of a newer schema)', () => {
    const after = base();
    after.cashback = { enabled: true, percent: 3 };
    expect(diffProgram(base(), after)).toEqual([
      { path: 'cashback.enabled', from: false, to: true },
      { path: 'cashback.percent', to: 3 },
    ]);
    expect(diffProgram({ a: 1, gone: { x: 1 } }, { a: 1, rfm: { recentDays: 30 } })).toEqual([
      { path: 'rfm', to: { recentDays: 30 } },
      { path: 'gone', from: { x: 1 } },
    ]);
  });

  it('tiers added to an empty list, then a tier renamed', () => {
    const withTiers = base();
    withTiers.tiers.levels = [{ name: 'Silver', from: 0, cashbackPercent: 3 }];
    expect(diffProgram(base(), withTiers)).toEqual([{ path: 'tiers.levels.0', to: { name: 'Silver', from: 0, cashbackPercent: 3 } }]);
    const renamed = structuredClone(withTiers);
    renamed.tiers.levels[0]!.name = 'Bronze';
    expect(diffProgram(withTiers, renamed)).toEqual([{ path: 'tiers.levels.0.name', from: 'Silver', to: 'Bronze' }]);
  });

});
