import { describe, expect, it } from 'vitest';
import { DEFAULT_PROGRAM, parseCompleteProgram, parseProgram, type Program } from '../../../src/rules/program.js';

// SPEC 5.1, copied verbatim, plus issue 12's RFM boundaries (`rfm`).
const SPEC_DEFAULT = {
  currency: 'RUB',
  enrol: { onFirstWonDeal: true, codePrefix: '' },
  referral: {
    enabled: true,
    qualify: 'first_won_deal',
    windowDays: 365,
    minDealAmount: 0,
    categories: [],
    levels: [{ percent: 10 }],
    referee: null,
    holdDays: 0,
    capPerReferral: null,
    capPerReferrerMonth: null,
  },
  cashback: { enabled: false },
  tiers: { basis: 'won_amount', levels: [] },
  coupons: null,
  expiry: { days: 0 },
  redemption: { maxPercentOfDeal: 50 },
  overspend: 'allow_negative',
  landingUrl: null,
  rfm: { recentDays: 30, sleepingDays: 90, lostDays: 365, loyalDeals: 3, championAmount: 100000 },
};

const FULL: Program = {
  currency: 'USD',
  enrol: { onFirstWonDeal: false, codePrefix: 'SHOP1' },
  referral: {
    enabled: true,
    qualify: 'every_won_deal',
    windowDays: 30,
    minDealAmount: 1000.5,
    categories: [0, 3],
    levels: [{ percent: 12.3456 }, { fixed: 250.25 }, { percent: 1 }],
    referee: { fixed: 500 },
    holdDays: 14,
    capPerReferral: 5000,
    capPerReferrerMonth: 20000.99,
  },
  cashback: { enabled: true, percent: 2.5 },
  tiers: {
    basis: 'won_amount',
    levels: [
      { name: 'Silver', from: 0, cashbackPercent: 1 },
      { name: 'Gold', from: 50000.5, cashbackPercent: 3 },
    ],
  },
  coupons: { everyReferrals: 5, value: 1000 },
  expiry: { days: 180 },
  redemption: { maxPercentOfDeal: 30 },
  overspend: 'clamp',
  landingUrl: 'https://shop.example.ru/promo?x=1',
  rfm: { recentDays: 14, sleepingDays: 60, lostDays: 180, loyalDeals: 2, championAmount: 50000.55 },
};

function ok(input: unknown): Program {
  const result = parseProgram(input);
  if (!result.ok) throw new Error(`expected a valid program, got ${JSON.stringify(result.errors)}`);
  return result.program;
}

function errorPaths(input: unknown): string[] {
  const result = parseProgram(input);
  if (result.ok) throw new Error(`expected errors for ${JSON.stringify(input)}`);
  return result.errors.map((e) => e.path);
}

/** A document with one section patched; deep so a nested field can be set alone. */
function withReferral(patch: Record<string, unknown>): unknown {
  return { referral: { ...SPEC_DEFAULT.referral, ...patch } };
}

describe('DEFAULT_PROGRAM', () => {
  it('is exactly the document of SPEC 5.1, key order included', () => {
    expect(DEFAULT_PROGRAM).toEqual(SPEC_DEFAULT);
    expect(JSON.stringify(DEFAULT_PROGRAM)).toBe(JSON.stringify(SPEC_DEFAULT));
  });

  it('is frozen, and parsing hands out fresh copies', () => {
    expect(Object.isFrozen(DEFAULT_PROGRAM.referral.levels[0])).toBe(true);
    const a = ok({});
    a.referral.levels.push({ fixed: 1 });
    a.tiers.levels.push({ name: 'X', from: 0, cashbackPercent: 1 });
    expect(ok({})).toEqual(SPEC_DEFAULT);
    expect(DEFAULT_PROGRAM).toEqual(SPEC_DEFAULT);
  });
});

describe('parseProgram: valid documents', () => {
  it('parses {} and the SPEC document itself to the default', () => {
    expect(ok({})).toEqual(SPEC_DEFAULT);
    expect(ok(SPEC_DEFAULT)).toEqual(SPEC_DEFAULT);
  });

  it('keeps a document that uses every option, through JSON', () => {
    expect(ok(JSON.parse(JSON.stringify(FULL)))).toEqual(FULL);
  });

  it.each<[string, unknown, (p: Program) => unknown, unknown]>([
    ['a missing field of a given section', { referral: { holdDays: 14 } }, (p) => p.referral, { ...SPEC_DEFAULT.referral, holdDays: 14 }],
    ['a missing section among given ones', { currency: 'EUR' }, (p) => p.enrol, SPEC_DEFAULT.enrol],
    ['tiers without levels', { tiers: { basis: 'won_count' } }, (p) => p.tiers, { basis: 'won_count', levels: [] }],
    ['cashback enabled with its percent', { cashback: { enabled: true, percent: 0 } }, (p) => p.cashback, { enabled: true, percent: 0 }],
    ['cashback enabled, percent from tiers', { cashback: { enabled: true }, tiers: { levels: [{ name: 'A', from: 0, cashbackPercent: 2 }] } }, (p) => p.cashback, { enabled: true }],
    ['a tier name with spaces around', { tiers: { levels: [{ name: '  Gold ', from: 0, cashbackPercent: 2 }] } }, (p) => p.tiers.levels[0]?.name, 'Gold'],
    ['an http landing URL', { landingUrl: 'http://example.com' }, (p) => p.landingUrl, 'http://example.com'],
    ['a welcome percent', withReferral({ referee: { percent: 5 } }), (p) => p.referral.referee, { percent: 5 }],
  ])('completes %s', (_name, input, pick, expected) => {
    expect(pick(ok(input))).toEqual(expected);
  });

  it.each<[string, unknown]>([
    ['windowDays 1', withReferral({ windowDays: 1 })],
    ['windowDays 3650', withReferral({ windowDays: 3650 })],
    ['holdDays 0', withReferral({ holdDays: 0 })],
    ['holdDays 365', withReferral({ holdDays: 365 })],
    ['percent 100', withReferral({ levels: [{ percent: 100 }] })],
    ['percent 0.0001', withReferral({ levels: [{ percent: 0.0001 }] })],
    ['fixed 0.01', withReferral({ levels: [{ fixed: 0.01 }] })],
    ['5 levels', withReferral({ levels: Array.from({ length: 5 }, () => ({ percent: 1 })) })],
    ['minDealAmount 0', withReferral({ minDealAmount: 0 })],
    ['minDealAmount 0.01', withReferral({ minDealAmount: 0.01 })],
    ['category 0', withReferral({ categories: [0] })],
    ['capPerReferral 0.01', withReferral({ capPerReferral: 0.01 })],
    ['codePrefix of 6', { enrol: { codePrefix: 'AB12CD' } }],
    ['expiry 3650', { expiry: { days: 3650 } }],
    ['redemption 0', { redemption: { maxPercentOfDeal: 0 } }],
    ['redemption 100', { redemption: { maxPercentOfDeal: 100 } }],
    ['coupons every 1', { coupons: { everyReferrals: 1, value: 0.01 } }],
    ['tier name of 40', { tiers: { levels: [{ name: 'x'.repeat(40), from: 0, cashbackPercent: 100 }] } }],
    ['won_count tiers', { tiers: { basis: 'won_count', levels: [{ name: 'A', from: 0, cashbackPercent: 0 }, { name: 'B', from: 1, cashbackPercent: 1 }] } }],
  ])('accepts %s', (_name, input) => {
    expect(parseProgram(input).ok).toBe(true);
  });
});

describe('parseProgram: invalid documents', () => {
  it.each<[string, unknown, string[]]>([
    ['null', null, ['']],
    ['an array', [], ['']],
    ['a string', 'x', ['']],
    ['nothing at all (an empty PUT must not reset the program)', undefined, ['']],
    ['an unknown top-level key', { ...SPEC_DEFAULT, bonus: 1 }, ['bonus']],
    ['a misspelt nested key', withReferral({ holdDay: 14 }), ['referral.holdDay']],
    ['currency in lower case', { currency: 'rub' }, ['currency']],
    ['a 4-letter currency', { currency: 'RUBL' }, ['currency']],
    ['codePrefix of 7', { enrol: { codePrefix: 'ABCDEFG' } }, ['enrol.codePrefix']],
    ['codePrefix with a dash', { enrol: { codePrefix: 'AB-C' } }, ['enrol.codePrefix']],
    ['an unknown qualify rule', withReferral({ qualify: 'any' }), ['referral.qualify']],
    ['windowDays 0', withReferral({ windowDays: 0 }), ['referral.windowDays']],
    ['windowDays 3651', withReferral({ windowDays: 3651 }), ['referral.windowDays']],
    ['windowDays 1.5', withReferral({ windowDays: 1.5 }), ['referral.windowDays']],
    ['a numeric string', withReferral({ windowDays: '30' }), ['referral.windowDays']],
    ['minDealAmount -0.01', withReferral({ minDealAmount: -0.01 }), ['referral.minDealAmount']],
    ['minDealAmount with 3 decimals', withReferral({ minDealAmount: 10.005 }), ['referral.minDealAmount']],
    ['a negative category', withReferral({ categories: [1, -1] }), ['referral.categories.1']],
    ['a fractional category', withReferral({ categories: [1.5] }), ['referral.categories.0']],
    ['no levels', withReferral({ levels: [] }), ['referral.levels']],
    ['6 levels', withReferral({ levels: Array.from({ length: 6 }, () => ({ percent: 1 })) }), ['referral.levels']],
    ['a level with both', withReferral({ levels: [{ percent: 10 }, { percent: 5, fixed: 100 }] }), ['referral.levels.1']],
    ['a level with neither', withReferral({ levels: [{}] }), ['referral.levels.0']],
    ['a level with an unknown key', withReferral({ levels: [{ percent: 10, amount: 5 }] }), ['referral.levels.0.amount']],
    ['percent 0', withReferral({ levels: [{ percent: 0 }] }), ['referral.levels.0.percent']],
    ['percent 100.0001', withReferral({ levels: [{ percent: 100.0001 }] }), ['referral.levels.0.percent']],
    ['percent with 5 decimals', withReferral({ levels: [{ percent: 1.00001 }] }), ['referral.levels.0.percent']],
    ['fixed 0', withReferral({ levels: [{ fixed: 0 }] }), ['referral.levels.0.fixed']],
    ['fixed with 3 decimals', withReferral({ levels: [{ fixed: 0.001 }] }), ['referral.levels.0.fixed']],
    ['a referee with both', withReferral({ referee: { percent: 1, fixed: 1 } }), ['referral.referee']],
    ['holdDays -1', withReferral({ holdDays: -1 }), ['referral.holdDays']],
    ['holdDays 366', withReferral({ holdDays: 366 }), ['referral.holdDays']],
    ['capPerReferral 0', withReferral({ capPerReferral: 0 }), ['referral.capPerReferral']],
    ['capPerReferrerMonth -5', withReferral({ capPerReferrerMonth: -5 }), ['referral.capPerReferrerMonth']],
    ['cashback on without a percent or tiers', { cashback: { enabled: true } }, ['cashback.percent']],
    ['cashback percent 101', { cashback: { enabled: false, percent: 101 } }, ['cashback.percent']],
    ['an unknown tier basis', { tiers: { basis: 'visits', levels: [] } }, ['tiers.basis']],
    ['tiers not increasing', { tiers: { levels: [{ name: 'A', from: 10, cashbackPercent: 1 }, { name: 'B', from: 5, cashbackPercent: 2 }] } }, ['tiers.levels.1.from']],
    ['tiers with equal from', { tiers: { levels: [{ name: 'A', from: 10, cashbackPercent: 1 }, { name: 'B', from: 10, cashbackPercent: 2 }] } }, ['tiers.levels.1.from']],
    ['tiers with one name twice', { tiers: { levels: [{ name: 'Gold', from: 0, cashbackPercent: 1 }, { name: 'gold', from: 10, cashbackPercent: 2 }] } }, ['tiers.levels.1.name']],
    ['a deal count with a fraction', { tiers: { basis: 'won_count', levels: [{ name: 'A', from: 1.5, cashbackPercent: 1 }] } }, ['tiers.levels.0.from']],
    ['a tier amount with 3 decimals', { tiers: { levels: [{ name: 'A', from: 1.005, cashbackPercent: 1 }] } }, ['tiers.levels.0.from']],
    ['an empty tier name', { tiers: { levels: [{ name: '  ', from: 0, cashbackPercent: 1 }] } }, ['tiers.levels.0.name']],
    ['a tier name of 41', { tiers: { levels: [{ name: 'x'.repeat(41), from: 0, cashbackPercent: 1 }] } }, ['tiers.levels.0.name']],
    ['a tier cashback of 101', { tiers: { levels: [{ name: 'A', from: 0, cashbackPercent: 101 }] } }, ['tiers.levels.0.cashbackPercent']],
    ['coupons every 0', { coupons: { everyReferrals: 0, value: 100 } }, ['coupons.everyReferrals']],
    ['coupons without a value', { coupons: { everyReferrals: 3 } }, ['coupons.value']],
    ['expiry 3651', { expiry: { days: 3651 } }, ['expiry.days']],
    ['redemption 100.5', { redemption: { maxPercentOfDeal: 100.5 } }, ['redemption.maxPercentOfDeal']],
    ['an unknown overspend policy', { overspend: 'ignore' }, ['overspend']],
    ['an ftp landing URL', { landingUrl: 'ftp://example.com' }, ['landingUrl']],
    ['a landing URL that is not a URL', { landingUrl: 'example.com' }, ['landingUrl']],
    ['a section of the wrong type', { referral: true }, ['referral']],
  ])('refuses %s', (_name, input, paths) => {
    expect([...new Set(errorPaths(input))].sort()).toEqual([...paths].sort());
  });

  it('names the level that has both percent and fixed, and says what is wrong', () => {
    const result = parseProgram(withReferral({ levels: [{ percent: 10 }, { percent: 5, fixed: 100 }] }));
    expect(result).toEqual({ ok: false, errors: [{ path: 'referral.levels.1', message: expect.stringMatching(/exactly one of "percent" or "fixed"/) }] });
  });

  it('explains a lower-case prefix rather than upper-casing it', () => {
    const result = parseProgram({ enrol: { codePrefix: 'shop' } });
    expect(result).toEqual({ ok: false, errors: [{ path: 'enrol.codePrefix', message: 'must be upper-case: "SHOP"' }] });
  });

  it('lists every bad path of a document at once, cross-field checks included', () => {
    const paths = errorPaths({
      currency: 'rub',
      enrol: { codePrefix: 'toolongprefix' },
      referral: {
        qualify: 'sometimes',
        windowDays: 0,
        categories: ['a'],
        levels: [{ percent: 200, fixed: 5 }, {}, { fixed: 1.234 }, 'x'],
        referee: { percent: 'five' },
        holdDay: 3,
      },
      // Tiers give the cashback percent here, so cashback.percent is not required.
      cashback: { enabled: true },
      tiers: { basis: 'won_count', levels: [{ name: 'A', from: 2, cashbackPercent: 1 }, { name: 'a', from: 1, cashbackPercent: 1 }, { name: 'B' }] },
      coupons: { everyReferrals: 0, value: 0 },
      expiry: { days: -1 },
      redemption: { maxPercentOfDeal: 'half' },
      overspend: 'maybe',
      landingUrl: 'javascript:alert(1)',
      extra: true,
    });
    expect([...new Set(paths)].sort()).toEqual(
      [
        'currency',
        'enrol.codePrefix',
        'referral.qualify',
        'referral.windowDays',
        'referral.categories.0',
        'referral.levels.0',
        'referral.levels.0.percent',
        'referral.levels.1',
        'referral.levels.2.fixed',
        'referral.levels.3',
        'referral.referee.percent',
        'referral.holdDay',
        'tiers.levels.1.from',
        'tiers.levels.1.name',
        'tiers.levels.2.from',
        'tiers.levels.2.cashbackPercent',
        'coupons.everyReferrals',
        'coupons.value',
        'expiry.days',
        'redemption.maxPercentOfDeal',
        'overspend',
        'landingUrl',
        'extra',
      ].sort(),
    );
  });

  it('requires the cashback percent even when other sections are wrong too', () => {
    expect(errorPaths({ currency: 1, referral: { levels: 'x' }, cashback: { enabled: true } }).sort()).toEqual(['cashback.percent', 'currency', 'referral.levels']);
  });

  it('gives every error a non-empty message', () => {
    const result = parseProgram({ currency: 1, referral: { levels: [{}] }, zz: 1 });
    expect(result.ok).toBe(false);
    if (!result.ok) for (const e of result.errors) expect(e.message.length).toBeGreaterThan(3);
  });
});

describe('parseCompleteProgram: what PUT /api/program takes', () => {
  it('accepts the complete default document and a complete custom one', () => {
    expect(parseCompleteProgram(SPEC_DEFAULT)).toEqual({ ok: true, program: DEFAULT_PROGRAM });
    expect(parseCompleteProgram(FULL)).toEqual({ ok: true, program: FULL });
  });

  it('names every missing key, nested ones too, once, next to the invalid ones', () => {
    const doc = structuredClone(SPEC_DEFAULT) as Record<string, unknown>;
    delete doc.overspend;
    const referral = doc.referral as Record<string, unknown>;
    delete referral.levels;
    referral.windowDays = 0;
    const result = parseCompleteProgram(doc);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      { path: 'referral.levels', message: 'is required' },
      { path: 'overspend', message: 'is required' },
      { path: 'referral.windowDays', message: 'must be at least 1' },
    ]);
  });

  it('keeps keys without a default optional (cashback.percent when tiers give the percent)', () => {
    const doc = { ...structuredClone(FULL), cashback: { enabled: true } };
    expect(parseCompleteProgram(doc).ok).toBe(true);
  });

  it('does not count inherited keys: an object whose prototype has the keys is still empty', () => {
    const result = parseCompleteProgram(Object.create(SPEC_DEFAULT));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.map((e) => e.path)).toContain('currency');
    expect(parseCompleteProgram(null)).toEqual({ ok: false, errors: [{ path: '', message: 'must be a JSON object: the complete program document' }] });
  });
});

describe('rfm: the RFM segment boundaries', () => {
  const rfm = (patch: Record<string, unknown>) => ({ rfm: { ...SPEC_DEFAULT.rfm, ...patch } });

  it('defaults every boundary, so {} and a partial rfm still parse', () => {
    expect(ok({}).rfm).toEqual({ recentDays: 30, sleepingDays: 90, lostDays: 365, loyalDeals: 3, championAmount: 100000 });
    expect(ok({ rfm: { lostDays: 400 } }).rfm).toEqual({ recentDays: 30, sleepingDays: 90, lostDays: 400, loyalDeals: 3, championAmount: 100000 });
  });

  it.each<[string, Record<string, unknown>]>([
    ['the smallest days, in order', { recentDays: 1, sleepingDays: 2, lostDays: 3 }],
    ['the largest days, in order', { recentDays: 3648, sleepingDays: 3649, lostDays: 3650 }],
    ['loyal from 2 deals', { loyalDeals: 2 }],
    ['loyal from 1000 deals', { loyalDeals: 1000 }],
    ['a champion amount of one kopeck', { championAmount: 0.01 }],
  ])('accepts %s', (_name, patch) => {
    expect(ok(rfm(patch)).rfm).toMatchObject(patch);
  });

  it.each<[string, Record<string, unknown>, { path: string; message: string }[]]>([
    ['0 recent days', { recentDays: 0 }, [{ path: 'rfm.recentDays', message: 'must be at least 1' }]],
    ['3651 lost days', { lostDays: 3651 }, [{ path: 'rfm.lostDays', message: 'must be at most 3650' }]],
    ['fractional days', { sleepingDays: 90.5 }, [{ path: 'rfm.sleepingDays', message: expect.any(String) as string }]],
    ['sleeping equal to recent', { recentDays: 90 }, [{ path: 'rfm.sleepingDays', message: 'must be greater than recentDays (90)' }]],
    ['lost before sleeping', { sleepingDays: 400 }, [{ path: 'rfm.lostDays', message: 'must be greater than sleepingDays (400)' }]],
    ['loyal from 1 deal', { loyalDeals: 1 }, [{ path: 'rfm.loyalDeals', message: 'must be at least 2' }]],
    ['loyal from 1001 deals', { loyalDeals: 1001 }, [{ path: 'rfm.loyalDeals', message: 'must be at most 1000' }]],
    ['loyal from 2.5 deals', { loyalDeals: 2.5 }, [{ path: 'rfm.loyalDeals', message: expect.any(String) as string }]],
    ['a champion amount of 0', { championAmount: 0 }, [{ path: 'rfm.championAmount', message: 'must be more than 0' }]],
    ['a champion amount with 3 decimals', { championAmount: 1.005 }, [{ path: 'rfm.championAmount', message: 'must be an amount with at most 2 decimal places' }]],
    ['an unknown key', { frequency: 2 }, [{ path: 'rfm.frequency', message: 'is not a known key' }]],
  ])('refuses %s at its field', (_name, patch, errors) => {
    expect(parseProgram(rfm(patch))).toEqual({ ok: false, errors });
  });

  it('is required in a complete document', () => {
    const doc = structuredClone(SPEC_DEFAULT) as Record<string, unknown>;
    delete (doc.rfm as Record<string, unknown>).championAmount;
    expect(parseCompleteProgram(doc)).toEqual({ ok: false, errors: [{ path: 'rfm.championAmount', message: 'is required' }] });
    delete doc.rfm;
    expect(parseCompleteProgram(doc)).toEqual({ ok: false, errors: [{ path: 'rfm', message: 'is required' }] });
  });
});
