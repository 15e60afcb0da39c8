/**
 * The program document (SPEC 5.1). Every field has the default a fresh install starts with, so a
 * partial document (even `{}`) is completed rather than refused, while an unknown key is an error:
 * a misspelt "holdDay" silently ignored would pay rewards the admin thought were on hold.
 * Amounts are decimal numbers in the program currency; pricing converts them with toMinor.
 */
import { z } from 'zod';

function hasDecimals(value: number, places: number): boolean {
  // toFixed rounds the exact binary value, so 12.3456 survives and 12.34567 does not.
  return Number.isFinite(value) && Math.abs(value) < 1e13 && Number(value.toFixed(places)) === value;
}

const percentPlaces = (v: number) => hasDecimals(v, 4);
const amountPlaces = (v: number) => hasDecimals(v, 2);
const PERCENT_PLACES = 'must have at most 4 decimal places';
const AMOUNT_PLACES = 'must be an amount with at most 2 decimal places';

const positivePercent = z
  .number()
  .gt(0, 'must be more than 0')
  .lte(100, 'must be at most 100')
  .refine(percentPlaces, PERCENT_PLACES);
const percent0to100 = z
  .number()
  .gte(0, 'must be at least 0')
  .lte(100, 'must be at most 100')
  .refine(percentPlaces, PERCENT_PLACES);
const positiveAmount = z.number().gt(0, 'must be more than 0').refine(amountPlaces, AMOUNT_PLACES);
const nonNegativeAmount = z.number().gte(0, 'must be at least 0').refine(amountPlaces, AMOUNT_PLACES);
// Cross-field checks also run when a sibling field is already wrong, so one response lists every
// bad path; their values may then be raw input, hence the defensive typeof checks inside.
const evenWithOtherErrors = { when: (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null };

const intIn = (min: number, max: number) =>
  z.int().gte(min, `must be at least ${min}`).lte(max, `must be at most ${max}`);

export type Reward = { percent: number } | { fixed: number };

const rewardSchema = z
  .strictObject({ percent: positivePercent.optional(), fixed: positiveAmount.optional() })
  .superRefine((v, ctx) => {
    if ((v.percent === undefined) === (v.fixed === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'must have exactly one of "percent" or "fixed"' });
    }
  }, evenWithOtherErrors)
  .transform((v): Reward => (v.percent !== undefined ? { percent: v.percent } : { fixed: v.fixed ?? 0 }));

const enrolSchema = z.strictObject({
  onFirstWonDeal: z.boolean().default(true),
  codePrefix: z
    .string()
    .default('')
    .superRefine((v, ctx) => {
      if (/^[A-Z0-9]{0,6}$/.test(v)) return;
      const upper = v.toUpperCase();
      ctx.addIssue({
        code: 'custom',
        message: /^[A-Z0-9]{0,6}$/.test(upper)
          ? `must be upper-case: "${upper}"`
          : 'must be up to 6 upper-case Latin letters or digits',
      });
    }),
});

const referralSchema = z.strictObject({
  enabled: z.boolean().default(true),
  qualify: z.enum(['first_won_deal', 'every_won_deal']).default('first_won_deal'),
  windowDays: intIn(1, 3650).default(365),
  minDealAmount: nonNegativeAmount.default(0),
  categories: z.array(z.int().gte(0, 'must be a pipeline id (0 or more)')).default(() => []),
  levels: z
    .array(rewardSchema)
    .min(1, 'must list at least one level')
    .max(5, 'must list at most 5 levels')
    .default(() => [{ percent: 10 }]),
  referee: rewardSchema.nullable().default(null),
  holdDays: intIn(0, 365).default(0),
  capPerReferral: positiveAmount.nullable().default(null),
  // Enforced by the handler against the ledger: a pure rule cannot see other deals' credits.
  capPerReferrerMonth: positiveAmount.nullable().default(null),
});

const cashbackSchema = z.strictObject({
  enabled: z.boolean().default(false),
  percent: percent0to100.optional(),
});

const tierLevelSchema = z.strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(40, 'must be at most 40 characters'),
  from: z.number().gte(0, 'must be at least 0'),
  cashbackPercent: percent0to100,
});

const tiersSchema = z
  .strictObject({
    basis: z.enum(['won_amount', 'won_count']).default('won_amount'),
    levels: z.array(tierLevelSchema).default(() => []),
  })
  .superRefine((v, ctx) => {
    if (!Array.isArray(v.levels)) return;
    const names = new Set<string>();
    let previous: number | null = null;
    v.levels.forEach((level, i) => {
      if (typeof level !== 'object' || level === null) return;
      const { name, from } = level as { name?: unknown; from?: unknown };
      if (typeof from === 'number' && Number.isFinite(from)) {
        if (v.basis === 'won_count' && !Number.isInteger(from)) {
          ctx.addIssue({ code: 'custom', path: ['levels', i, 'from'], message: 'must be a whole number of deals' });
        }
        if (v.basis === 'won_amount' && !amountPlaces(from)) {
          ctx.addIssue({ code: 'custom', path: ['levels', i, 'from'], message: AMOUNT_PLACES });
        }
        if (previous !== null && from <= previous) {
          ctx.addIssue({ code: 'custom', path: ['levels', i, 'from'], message: `must be greater than the previous level's ${previous}` });
        }
        previous = from;
      }
      if (typeof name === 'string') {
        // "Gold" and "gold " would read as one tier in the CRM field.
        const key = name.trim().toLowerCase();
        if (names.has(key)) ctx.addIssue({ code: 'custom', path: ['levels', i, 'name'], message: `duplicates another level's name "${name.trim()}"` });
        names.add(key);
      }
    });
  }, evenWithOtherErrors);

const couponsSchema = z.strictObject({
  everyReferrals: intIn(1, 1_000_000),
  value: positiveAmount,
});

/**
 * RFM segment boundaries (issue 12; src/rules/segment-clients.ts applies them): days since the
 * last won deal (recent / sleeping / lost), the won deals that make a client loyal, and the won
 * amount (program currency) that makes a loyal active client a champion.
 */
const rfmSchema = z
  .strictObject({
    recentDays: intIn(1, 3650).default(30),
    sleepingDays: intIn(1, 3650).default(90),
    lostDays: intIn(1, 3650).default(365),
    loyalDeals: intIn(2, 1000).default(3),
    championAmount: positiveAmount.default(100_000),
  })
  .superRefine((v, ctx) => {
    // The error goes to the later field, naming the earlier one: that is the one an admin moves.
    const order = ['recentDays', 'sleepingDays', 'lostDays'] as const;
    for (let i = 1; i < order.length; i++) {
      const earlier = v[order[i - 1]!] as unknown;
      const later = v[order[i]!] as unknown;
      if (typeof earlier === 'number' && typeof later === 'number' && later <= earlier) {
        ctx.addIssue({ code: 'custom', path: [order[i]!], message: `must be greater than ${order[i - 1]!} (${earlier})` });
      }
    }
  }, evenWithOtherErrors);

export type RfmBoundaries = z.output<typeof rfmSchema>;

function isHttpUrl(value: string): boolean {
  if (value.length > 2048) return false;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

export const programSchema = z
  .strictObject({
    currency: z.string().regex(/^[A-Z]{3}$/, 'must be a 3-letter upper-case currency code, e.g. "RUB"').default('RUB'),
    enrol: enrolSchema.prefault({}),
    referral: referralSchema.prefault({}),
    cashback: cashbackSchema.prefault({}),
    tiers: tiersSchema.prefault({}),
    coupons: couponsSchema.nullable().default(null),
    expiry: z.strictObject({ days: intIn(0, 3650).default(0) }).prefault({}),
    redemption: z.strictObject({ maxPercentOfDeal: percent0to100.default(50) }).prefault({}),
    overspend: z.enum(['allow_negative', 'clamp']).default('allow_negative'),
    landingUrl: z.string().refine(isHttpUrl, 'must be an http(s) URL').nullable().default(null),
    rfm: rfmSchema.prefault({}),
  })
  .superRefine((v, ctx) => {
    const cashback = v.cashback as Partial<z.output<typeof cashbackSchema>> | undefined;
    const tierLevels = (v.tiers as { levels?: unknown } | undefined)?.levels;
    const tiersGivePercent = Array.isArray(tierLevels) && tierLevels.length > 0;
    if (cashback?.enabled === true && cashback.percent === undefined && !tiersGivePercent) {
      ctx.addIssue({ code: 'custom', path: ['cashback', 'percent'], message: 'is required when cashback is enabled and there are no tiers' });
    }
  }, evenWithOtherErrors);

export type Program = z.output<typeof programSchema>;
export type TierLevel = Program['tiers']['levels'][number];

export interface ProgramError {
  path: string;
  message: string;
}

export type ParseProgramResult = { ok: true; program: Program } | { ok: false; errors: ProgramError[] };

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

export function parseProgram(input: unknown): ParseProgramResult {
  const result = programSchema.safeParse(input);
  if (result.success) return { ok: true, program: result.data };
  const errors: ProgramError[] = [];
  const seen = new Set<string>();
  const add = (path: string, message: string) => {
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    errors.push({ path, message });
  };
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) add(dotted([...issue.path, key]), 'is not a known key');
    } else {
      add(dotted(issue.path), issue.message);
    }
  }
  return { ok: false, errors };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** SPEC 5.1's default, frozen so no caller can change what every fresh install starts with. */
export const DEFAULT_PROGRAM: Program = deepFreeze(programSchema.parse({}));

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Paths of the default document that `input` leaves out, at every level where the default has
 * an object (`referral.holdDays`, …). `Object.hasOwn`, not `in`: `{"__proto__": …}` parsed
 * from JSON must not count as having `constructor` or anything else through its prototype.
 */
function missingPaths(defaults: Record<string, unknown>, input: Record<string, unknown>, prefix: string): string[] {
  const missing: string[] = [];
  for (const [key, fallback] of Object.entries(defaults)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!Object.hasOwn(input, key)) missing.push(path);
    else if (isPlainObject(fallback) && isPlainObject(input[key])) missing.push(...missingPaths(fallback, input[key], path));
  }
  return missing;
}

/**
 * A program document as an admin replaces it (PUT /api/program): complete, every key of the
 * default document present, so a body that lost keys on the way (`{}`, a half-filled form) is
 * refused instead of silently reset to the defaults. Keys without a default stay optional
 * (`cashback.percent` when tiers give the percent). Every missing path and every invalid one is
 * listed in one answer.
 */
export function parseCompleteProgram(input: unknown): ParseProgramResult {
  if (!isPlainObject(input)) return { ok: false, errors: [{ path: '', message: 'must be a JSON object: the complete program document' }] };
  const missing = missingPaths(DEFAULT_PROGRAM as unknown as Record<string, unknown>, input, '').map((path) => ({ path, message: 'is required' }));
  const parsed = parseProgram(input);
  if (parsed.ok && !missing.length) return parsed;
  const known = new Set(missing.map((m) => m.path));
  // A missing key also fails zod's own check on its parent; name it once, as missing.
  const others = parsed.ok ? [] : parsed.errors.filter((e) => !known.has(e.path));
  return { ok: false, errors: [...missing, ...others] };
}
