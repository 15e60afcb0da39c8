/**
 * The JSON API's shared contract (SPEC 3, docs/contract.md section 2): zod schemas of the request
 * bodies and answers the CRM card tabs use, and the types inferred from them. The server's
 * handlers answer these very types (so an answer cannot drift from its schema) and its routes
 * parse bodies with these schemas; the Vue client (client/src/api.ts) imports the same module.
 *
 * It runs in the browser too: it imports zod and pure rules only (an eslint zone keeps it so).
 * Amounts are decimal numbers in the program currency (two decimals); times are ISO strings.
 */
import { z } from 'zod';
import type { RejectReason as RulesRejectReason } from '../rules/attribute-referral.js';
import type { EntryStatus as RulesEntryStatus } from '../rules/ledger-status.js';
import { fromMinor, toMinor } from '../rules/money.js';

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/** A decimal amount in the program currency (two decimals at most). */
export const amountSchema = z.number();
/** An ISO 8601 date-time, as `Date.prototype.toISOString` writes it. */
export const isoTimeSchema = z.iso.datetime();

export const personEntitySchema = z.enum(['contact', 'lead']);
export type PersonEntity = z.infer<typeof personEntitySchema>;

/** A person in the CRM: a contact, or a lead not (yet) converted. Names stay in the portal. */
export const personRefSchema = z.object({ entity: personEntitySchema, id: z.number().int().positive() });
export type PersonRef = z.infer<typeof personRefSchema>;

export const ledgerReasonSchema = z.enum(['referral', 'welcome', 'cashback', 'coupon', 'promo', 'adjustment', 'redemption', 'expiry']);
export type LedgerReason = z.infer<typeof ledgerReasonSchema>;
/** credit: first entry of a slot; reversal: brings a slot's net to 0; correction: any other change. */
export const ledgerKindSchema = z.enum(['credit', 'reversal', 'correction']);
export type LedgerKind = z.infer<typeof ledgerKindSchema>;
export const entryStatusSchema = z.enum(['pending', 'available', 'reversed', 'expired']) satisfies z.ZodType<RulesEntryStatus>;
export type EntryStatus = z.infer<typeof entryStatusSchema>;
export const couponStatusSchema = z.enum(['issued', 'reversed']);
export type CouponStatus = z.infer<typeof couponStatusSchema>;
export const referralStatusSchema = z.enum(['active', 'rejected']);
export type ReferralStatus = z.infer<typeof referralStatusSchema>;
export const rejectReasonSchema = z.enum(['self_referral', 'cycle', 'already_customer', 'unknown_code']) satisfies z.ZodType<RulesRejectReason>;
export type RejectReason = z.infer<typeof rejectReasonSchema>;
export const referralSourceSchema = z.enum(['deal', 'contact', 'lead', 'manual', 'link']);
export type ReferralSource = z.infer<typeof referralSourceSchema>;
export const tierBasisSchema = z.enum(['won_amount', 'won_count']);
export type TierBasis = z.infer<typeof tierBasisSchema>;

/** One ledger entry as the API answers it. */
export const ledgerItemSchema = z.object({
  id: z.number().int(),
  /** When the entry was written. */
  at: isoTimeSchema,
  reason: ledgerReasonSchema,
  kind: ledgerKindSchema,
  /** Negative for reversals and redemptions. */
  amount: amountSchema,
  status: entryStatusSchema,
  dealId: z.number().int().nullable(),
  level: z.number().int(),
  /** When the amount becomes (or became) available. */
  availableAt: isoTimeSchema,
  comment: z.string().nullable(),
  /** What the referrer's monthly cap held back from this slot (0 when nothing). */
  capped: amountSchema,
  /** What a clamped reversal could not take back because the bonus was spent. */
  shortfall: amountSchema,
  /** The conversion that priced it: the deal's currency, rate and amount, or null. */
  fx: z.object({ currency: z.string(), rate: z.string(), amount: amountSchema }).nullable(),
});
export type LedgerItem = z.infer<typeof ledgerItemSchema>;

/** A milestone coupon (SPEC 5.1 coupons). */
export const couponItemSchema = z.object({
  code: z.string(),
  value: amountSchema,
  /** 1 for the first `everyReferrals` qualified referrals, 2 for the next, … */
  milestone: z.number().int(),
  status: couponStatusSchema,
  /** When it was first issued. */
  issuedAt: isoTimeSchema,
});
export type CouponItem = z.infer<typeof couponItemSchema>;

/** An admin's override of a rejection: Bitrix24 user id, time, comment. */
export const referralOverrideSchema = z.object({ by: z.number().int(), at: isoTimeSchema, comment: z.string() });
export type ReferralOverride = z.infer<typeof referralOverrideSchema>;

/** A referral: status, the reason of a rejection (kept after an override), the people. */
export const referralViewSchema = z.object({
  id: z.number().int(),
  status: referralStatusSchema,
  rejectReason: rejectReasonSchema.nullable(),
  code: z.string().nullable(),
  referee: personRefSchema.nullable(),
  referrer: personRefSchema.nullable(),
  source: referralSourceSchema,
  /** Where the claim came from, e.g. `deal:12`, `contact:7`. */
  sourceRef: z.string(),
  createdAt: isoTimeSchema,
  override: referralOverrideSchema.nullable(),
});
export type ReferralView = z.infer<typeof referralViewSchema>;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** The closed set of error codes (src/handlers/errors.ts re-exports it; one HTTP status each). */
export const API_ERROR_CODES = [
  'bad_request', // input failed validation (details name each bad field)
  'unauthorized', // unknown portal, wrong application token, bad user token
  'forbidden', // authenticated but not allowed (non-admin on an admin route)
  'not_found',
  'conflict', // a business rule refused (insufficient balance, over the deal's limit …)
  'payload_too_large',
  'install_unverified', // the OAuth server did not confirm the tokens of an install
  'insecure_portal', // a portal endpoint that is not an https public host
  'portal_error', // the portal answered with an error we cannot recover from
  'portal_unavailable', // the portal or OAuth server could not be reached / kept refusing
  'internal',
] as const;
export const errorCodeSchema = z.enum(API_ERROR_CODES);
export type ErrorCode = z.infer<typeof errorCodeSchema>;

export const errorDetailSchema = z.object({
  /** Dotted path of the offending field, e.g. `amount` or `referral.levels.0.percent`. */
  path: z.string(),
  message: z.string(),
});
export type ErrorDetail = z.infer<typeof errorDetailSchema>;

/** Every error answer: `{ error: { code, message, details, requestId, reason? } }`. */
export const errorBodySchema = z.object({
  error: z.object({
    code: errorCodeSchema,
    message: z.string(),
    details: z.array(errorDetailSchema),
    requestId: z.string(),
    /** For a 409: which business rule refused, machine-readable (e.g. `insufficient_balance`). */
    reason: z.string().optional(),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

// ---------------------------------------------------------------------------------------------
// Request bodies (input: what the client sends; output: what the server works with)
// ---------------------------------------------------------------------------------------------

/** No real bonus amount comes near it; it keeps minor units far inside safe integers. */
const MAX_MAJOR = 1_000_000_000;
const DECIMAL_TEXT = /^-?\d{1,10}(\.\d{1,2})?$/;

/**
 * An amount typed in the UI: a decimal number with at most two decimals (a decimal text such as
 * "100.50" is taken too). Parsing yields integer minor units (the server's unit).
 */
export const minorUnitsInput = z
  .union([z.number(), z.string().regex(DECIMAL_TEXT, 'must be a decimal number with at most two decimals')], { error: 'must be a number' })
  .transform((value, ctx) => {
    const minor = toMinor(value);
    if (minor === null || (typeof value === 'number' && fromMinor(minor) !== value)) {
      ctx.addIssue({ code: 'custom', message: 'must be a number with at most two decimals' });
      return z.NEVER;
    }
    if (Math.abs(minor) > MAX_MAJOR * 100) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_MAJOR} in absolute value` });
      return z.NEVER;
    }
    return minor;
  });

/** A positive amount; parses to minor units. */
export const positiveAmountInput = minorUnitsInput.refine((n) => n > 0, 'must be greater than zero');
/** A signed, non-zero amount; parses to minor units. */
export const signedAmountInput = minorUnitsInput.refine((n) => n !== 0, 'must not be zero');

/** POST /api/deals/:id/redeem: an amount, or `"max"` (the most the deal's limit and the balance allow). */
export const redeemRequestSchema = z.object({
  amount: z.union([z.literal('max'), positiveAmountInput], { error: 'must be a positive number with at most two decimals, or "max"' }),
});
export type RedeemRequest = z.input<typeof redeemRequestSchema>;

/** POST /api/members/:entity/:id/adjust (admins): a signed amount and a mandatory comment. */
export const adjustRequestSchema = z.object({
  amount: signedAmountInput,
  comment: z.string({ error: 'is required' }).trim().min(1, 'is required').max(1000, 'must be at most 1000 characters'),
});
export type AdjustRequest = z.input<typeof adjustRequestSchema>;

/** POST /api/members/:entity/:id/promo: the promo code as typed (case, spaces and a dash forgiven). */
export const promoRequestSchema = z.object({
  code: z.string({ error: 'must be a text' }).trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
});
export type PromoRequest = z.input<typeof promoRequestSchema>;

// ---------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------

/** Progress to the next tier, on the program's basis (won amount in the program currency, or won deals). */
export const tierProgressSchema = z.object({
  basis: tierBasisSchema,
  /** The client's lifetime won amount (decimal) or number of won deals, as the tier counts it. */
  value: z.number(),
  /** Where the next tier starts (same unit as `value`); null at the top tier. */
  nextFrom: z.number().nullable(),
});
export type TierProgress = z.infer<typeof tierProgressSchema>;

/** GET /api/members/:entity/:id, and the answer of POST …/enroll. */
export const memberAnswerSchema = z.object({
  entity: personEntitySchema,
  id: z.number().int(),
  /** Has a referral code (SPEC 5: given on enrolment). */
  enrolled: z.boolean(),
  code: z.string().nullable(),
  link: z.string().nullable(),
  joinedAt: isoTimeSchema.nullable(),
  /** The program currency all amounts are in. */
  currency: z.string(),
  balance: amountSchema,
  pending: amountSchema,
  tier: z.string().nullable(),
  nextTier: z.object({ name: z.string(), from: z.number() }).nullable(),
  /** Progress to the next tier; null when the program has no tiers. */
  tierProgress: tierProgressSchema.nullable(),
  /** Qualified referrals: referees whose won deal pays this person now (SPEC 4.1). */
  referrals: z.number().int(),
  referrer: personRefSchema.nullable(),
  /** Bonus that expires within 30 days unless spent first: the total and each date, soonest first. */
  expiring: z.object({ total: amountSchema, dates: z.array(z.object({ at: isoTimeSchema, amount: amountSchema })) }),
  /** How this person came: the active referral, else the latest rejection (with its reason). */
  referral: referralViewSchema.nullable(),
  /** Every referral recorded for this person as referee, newest first (rejections included). */
  referralHistory: z.array(referralViewSchema),
  /** Newest first, one page. */
  ledger: z.array(ledgerItemSchema),
  /** Milestone coupons, oldest milestone first (reversed ones too). */
  coupons: z.array(couponItemSchema),
  /** Cursor (`?before=`) for the next, older page; null on the last page. */
  nextBefore: z.number().int().nullable(),
});
export type MemberAnswer = z.infer<typeof memberAnswerSchema>;

/** A ledger entry a deal caused, with who it credits or debits. */
export const dealEntrySchema = ledgerItemSchema.extend({ member: personRefSchema.nullable() });
export type DealEntry = z.infer<typeof dealEntrySchema>;

/** The deal's referral: the one in force, else the rejection of the deal's claim (or the client's latest). */
export const dealReferralSchema = z.object({
  id: z.number().int(),
  code: z.string().nullable(),
  referrer: personRefSchema.nullable(),
  source: referralSourceSchema,
  status: referralStatusSchema,
  rejectReason: rejectReasonSchema.nullable(),
  override: referralOverrideSchema.nullable(),
});
export type DealReferral = z.infer<typeof dealReferralSchema>;

/** Why nothing can be redeemed on the deal now (the 409 `reason` a redemption would get). */
export const redemptionBlockSchema = z.enum(['deal_closed', 'currency_not_converted', 'insufficient_balance', 'over_deal_limit']);
export type RedemptionBlock = z.infer<typeof redemptionBlockSchema>;

/** What the redeem form needs: the deal's amount, what is redeemed, and the most that can be now. */
export const dealRedemptionSchema = z.object({
  /** The deal's amount in the program currency (converted like the loop converts it); null when it cannot be. */
  dealAmount: amountSchema.nullable(),
  /** The deal's own currency. */
  dealCurrency: z.string(),
  /** Redeemed on the deal so far, net of returns. */
  redeemed: amountSchema,
  /** The most POST …/redeem accepts now: the client's available bonus and the deal's limit left. */
  maxNow: amountSchema,
  /** The deal accepts a redemption (in progress or won; not lost or deleted). */
  open: z.boolean(),
  /** Why `maxNow` is 0, else null. */
  blocked: redemptionBlockSchema.nullable(),
});
export type DealRedemption = z.infer<typeof dealRedemptionSchema>;

/** GET /api/deals/:id. */
export const dealAnswerSchema = z.object({
  id: z.number().int(),
  /** The program currency all amounts are in. */
  currency: z.string(),
  referral: dealReferralSchema.nullable(),
  /** Oldest first. */
  entries: z.array(dealEntrySchema),
  /** Milestone coupons whose credit or reversal this deal's change caused, with their holder. */
  coupons: z.array(couponItemSchema.extend({ member: personRefSchema.nullable() })),
  client: personRefSchema.extend({ balance: amountSchema, pending: amountSchema }).nullable(),
  /** Null for a deal Sarafan has not seen. */
  redemption: dealRedemptionSchema.nullable(),
  /** The deal's amount left to pay after redemption: `dealAmount − redeemed`; null with `redemption`. */
  dealTotal: amountSchema.nullable(),
});
export type DealAnswer = z.infer<typeof dealAnswerSchema>;

/** POST /api/deals/:id/redeem. */
export const redeemAnswerSchema = z.object({
  dealId: z.number().int(),
  currency: z.string(),
  /** The redemption entry (reason `redemption`, negative). */
  entry: ledgerItemSchema,
  /** The client's new balance. */
  client: personRefSchema.extend({ balance: amountSchema, pending: amountSchema }),
  /** Total redeemed on the deal, net of returns. */
  dealRedeemed: amountSchema,
});
export type RedeemAnswer = z.infer<typeof redeemAnswerSchema>;

/** POST /api/members/:entity/:id/adjust. */
export const adjustAnswerSchema = z.object({
  entity: personEntitySchema,
  id: z.number().int(),
  entry: ledgerItemSchema,
  balance: amountSchema,
  pending: amountSchema,
});
export type AdjustAnswer = z.infer<typeof adjustAnswerSchema>;

/** POST /api/members/:entity/:id/promo. */
export const promoAnswerSchema = z.object({
  code: z.string(),
  campaign: z.object({ id: z.number().int(), name: z.string() }),
  entry: ledgerItemSchema,
  balance: amountSchema,
  pending: amountSchema,
});
export type PromoAnswer = z.infer<typeof promoAnswerSchema>;

/** GET /api/session: who the caller is and the program facts the card tabs render. */
export const sessionAnswerSchema = z.object({
  userId: z.number().int(),
  isAdmin: z.boolean(),
  portal: z.object({
    domain: z.string(),
    /** The language the install ran in (`ru`, `en`, …), null when not known; the frame's own LANG wins. */
    lang: z.string().nullable(),
  }),
  program: z.object({
    version: z.number().int(),
    currency: z.string(),
    referralEnabled: z.boolean(),
    /** How many referrer levels pay (the depth of the referral tree). */
    levels: z.number().int(),
    tiers: z.object({
      basis: tierBasisSchema,
      levels: z.array(z.object({ name: z.string(), from: z.number(), cashbackPercent: z.number() })),
    }),
    redemption: z.object({ maxPercentOfDeal: z.number() }),
    /** Days available bonus lasts; null = never expires. */
    expiryDays: z.number().int().nullable(),
  }),
});
export type SessionAnswer = z.infer<typeof sessionAnswerSchema>;

/** GET /api/codes/:code: a referral code as the manager types it. */
export const codeCheckAnswerSchema = z.discriminatedUnion('valid', [
  z.object({
    /** The normalized code (upper case, no spaces or dash). */
    code: z.string(),
    valid: z.literal(true),
    referrer: personRefSchema,
  }),
  z.object({
    /** The normalized code, or the text as typed (trimmed) when it cannot be a code. */
    code: z.string(),
    valid: z.literal(false),
    reason: z.enum(['unknown_code', 'malformed']),
  }),
]);
export type CodeCheckAnswer = z.infer<typeof codeCheckAnswerSchema>;

/** One person in the referral tree, with those they referred in turn. */
export interface ReferralNode {
  /** The referral's id. */
  id: number;
  person: PersonRef | null;
  /** 1 = referred by the root, 2 = by one of those, … */
  level: number;
  status: ReferralStatus;
  rejectReason: RejectReason | null;
  createdAt: string;
  /** The person's won deal pays their direct referrer a referral reward now. */
  qualified: boolean;
  /** What the root earns now from this person's own deals (referral rewards at this level). */
  earned: number;
  /** `earned` plus what the root earns from everyone below this person. */
  branchEarned: number;
  /** Only active referrals have children (a rejected one pays nobody). */
  children: ReferralNode[];
}

export const referralNodeSchema: z.ZodType<ReferralNode> = z.lazy(() =>
  z.object({
    id: z.number().int(),
    person: personRefSchema.nullable(),
    level: z.number().int().positive(),
    status: referralStatusSchema,
    rejectReason: rejectReasonSchema.nullable(),
    createdAt: isoTimeSchema,
    qualified: z.boolean(),
    earned: amountSchema,
    branchEarned: amountSchema,
    children: z.array(referralNodeSchema),
  }),
);

/** GET /api/members/:entity/:id/referrals. */
export const referralTreeAnswerSchema = z.object({
  entity: personEntitySchema,
  id: z.number().int(),
  currency: z.string(),
  /** The program's referrer levels: how deep the tree goes. */
  levels: z.number().int(),
  /** Oldest referral first at every level. */
  referrals: z.array(referralNodeSchema),
  /** Nodes in the tree. */
  total: z.number().int(),
  /** More people than the cap (`MAX_REFERRAL_TREE_NODES`) were left out. */
  truncated: z.boolean(),
  /** What the root earns now from the whole tree. */
  earned: amountSchema,
});
export type ReferralTreeAnswer = z.infer<typeof referralTreeAnswerSchema>;

/** The most people a referral tree answer holds. */
export const MAX_REFERRAL_TREE_NODES = 500;
