/**
 * The admin page's API contract (SPEC 3, 7, 8; issue 12): analytics, ledger search, program
 * versions and installation health. Like ./api.ts it is shared by the server (handlers answer
 * these types, HTTP tests parse real answers with these schemas) and the Vue client (types only).
 *
 * Amounts are decimal numbers in the program currency (two decimals); times are ISO strings.
 * A period is half-open: `from` inclusive, `to` exclusive.
 */
import { z } from 'zod';
import { amountSchema, isoTimeSchema, ledgerItemSchema, personRefSchema } from './api.js';
import { RFM_SEGMENTS } from '../rules/segment-clients.js';

// ---------------------------------------------------------------------------------------------
// GET /api/analytics?from=&to=&category=
// ---------------------------------------------------------------------------------------------

/** RFM segments (SPEC 8), best first: the pure rule's own list (src/rules/segment-clients.ts). */
export { RFM_SEGMENTS };
export const rfmSegmentSchema = z.enum(RFM_SEGMENTS);
export type RfmSegment = z.infer<typeof rfmSegmentSchema>;

/** Clients of one kind (referred, or the others) and what their won deals are worth. */
export const clientGroupSchema = z.object({
  /** Clients with at least one won deal before the period's end. */
  clients: z.number().int(),
  /** Their won amount divided by `clients` (0 when there are none). */
  averageLtv: amountSchema,
  /** Share of those clients with two or more won deals, 0..1 (null when there are none). */
  repeatShare: z.number().nullable(),
});
export type ClientGroup = z.infer<typeof clientGroupSchema>;

export const analyticsAnswerSchema = z.object({
  currency: z.string(),
  period: z.object({ from: isoTimeSchema, to: isoTimeSchema }),
  /** The pipeline (deal category) the figures are limited to; null = every pipeline. */
  category: z.number().int().nullable(),
  /** Referral link clicks → referred leads → referred deals → won referred deals, in the period. */
  funnel: z.object({
    clicks: z.number().int(),
    /** People who came with an accepted referral in the period (leads and contacts). */
    referredLeads: z.number().int(),
    /** Deals with a referral that Sarafan first saw in the period. */
    referredDeals: z.number().int(),
    /** Referred deals first won in the period (and still won). */
    wonReferredDeals: z.number().int(),
  }),
  /** Sum of won referred deal amounts in the program currency. */
  referredRevenue: amountSchema,
  /** Credited minus reversed in the period: referral, welcome, cashback, coupons. */
  rewardCost: amountSchema,
  rewardCostByReason: z.object({ referral: amountSchema, welcome: amountSchema, cashback: amountSchema, coupon: amountSchema }),
  /** (referredRevenue − rewardCost) / rewardCost × 100; null when nothing was paid. */
  roiPercent: z.number().nullable(),
  /** Lifetime value: referred clients against the others. */
  ltv: z.object({ referred: clientGroupSchema, others: clientGroupSchema }),
  /** Now, whatever the period: bonus the program owes. */
  liability: z.object({
    available: amountSchema,
    pending: amountSchema,
    /** Available bonus that expires in the next 30 days unless spent first. */
    expiring30d: amountSchema,
  }),
  /** By referred revenue in the period, at most 10. */
  topReferrers: z.array(
    z.object({
      member: personRefSchema.nullable(),
      code: z.string().nullable(),
      wonReferredDeals: z.number().int(),
      referredRevenue: amountSchema,
      /** Referral rewards credited to them in the period, net of reversals. */
      earned: amountSchema,
    }),
  ),
  /** Members per tier now (name null = below the first tier); empty when the program has no tiers. */
  tiers: z.array(z.object({ name: z.string().nullable(), members: z.number().int() })),
  /** Clients per RFM segment as of the last nightly run, and when that was (null = never). */
  segments: z.object({
    computedAt: isoTimeSchema.nullable(),
    counts: z.array(z.object({ segment: rfmSegmentSchema, members: z.number().int() })),
  }),
  /** One row per calendar month (UTC) that the period touches, oldest first. */
  monthly: z.array(
    z.object({
      month: z.string().regex(/^\d{4}-\d{2}$/),
      clicks: z.number().int(),
      referredDeals: z.number().int(),
      wonReferredDeals: z.number().int(),
      referredRevenue: amountSchema,
      rewardCost: amountSchema,
    }),
  ),
});
export type AnalyticsAnswer = z.infer<typeof analyticsAnswerSchema>;

// ---------------------------------------------------------------------------------------------
// GET /api/ledger?person=contact:12&deal=&reason=&kind=&from=&to=&before=&limit=
// ---------------------------------------------------------------------------------------------

export const ledgerSearchItemSchema = ledgerItemSchema.extend({
  /** Whose bonus the entry changes. */
  member: personRefSchema.nullable(),
  /** Who or what caused it: `deal:12`, `robot:…`, `user:1`, `promo:…`, `system:expiry` … */
  causedBy: z.string(),
});
export type LedgerSearchItem = z.infer<typeof ledgerSearchItemSchema>;

export const ledgerSearchAnswerSchema = z.object({
  currency: z.string(),
  /** Newest first. */
  items: z.array(ledgerSearchItemSchema),
  /** Cursor (`?before=`) for the next, older page; null on the last page. */
  nextBefore: z.number().int().nullable(),
});
export type LedgerSearchAnswer = z.infer<typeof ledgerSearchAnswerSchema>;

// ---------------------------------------------------------------------------------------------
// GET /api/program/versions
// ---------------------------------------------------------------------------------------------

export const programChangeSchema = z.object({
  /** Dotted path in the program document, e.g. `referral.levels.0.percent`. */
  path: z.string(),
  /** The value before (absent = the key was added). */
  from: z.unknown().optional(),
  /** The value after (absent = the key was removed). */
  to: z.unknown().optional(),
});
export type ProgramChange = z.infer<typeof programChangeSchema>;

export const programVersionsAnswerSchema = z.object({
  /** Newest first. */
  versions: z.array(
    z.object({
      version: z.number().int(),
      createdAt: isoTimeSchema,
      /** The Bitrix24 user who saved it; null for the install's default. */
      createdBy: z.number().int().nullable(),
      /** What changed against the version before (empty for version 1). */
      changes: z.array(programChangeSchema),
    }),
  ),
});
export type ProgramVersionsAnswer = z.infer<typeof programVersionsAnswerSchema>;

// ---------------------------------------------------------------------------------------------
// GET /api/health, POST /api/health/repair, POST /api/jobs/:id/retry
// ---------------------------------------------------------------------------------------------

export const registrationItemSchema = z.object({
  kind: z.enum(['field', 'event', 'placement', 'robot']),
  /** `UF_CRM_SARAFAN_CODE (deal)`, `ONCRMDEALUPDATE`, `CRM_DEAL_DETAIL_TAB`, `sarafan_accrue` … */
  name: z.string(),
  present: z.boolean(),
  /** What is wrong when present but not as registered (e.g. a handler URL elsewhere). */
  problem: z.string().nullable(),
});
export type RegistrationItem = z.infer<typeof registrationItemSchema>;

export const deadJobSchema = z.object({
  id: z.number().int(),
  kind: z.string(),
  key: z.string(),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
  updatedAt: isoTimeSchema,
});
export type DeadJob = z.infer<typeof deadJobSchema>;

export const healthAnswerSchema = z.object({
  checkedAt: isoTimeSchema,
  installation: z.object({ domain: z.string(), status: z.string(), installedAt: isoTimeSchema.nullable() }),
  /** What the portal has of Sarafan's registration now; null with `registrationError` when it could not be read. */
  registration: z.array(registrationItemSchema).nullable(),
  registrationError: z.string().nullable(),
  /** When the last CRM event from this portal was received. */
  lastEventAt: isoTimeSchema.nullable(),
  reconciliation: z.object({
    /** When the last reconciliation completed. */
    lastRunAt: isoTimeSchema.nullable(),
    /** Seconds since then (null = never ran). */
    lagSeconds: z.number().nullable(),
  }),
  queue: z.object({
    queued: z.number().int(),
    running: z.number().int(),
    dead: z.number().int(),
    /** When the oldest queued job became due (null = none queued). */
    oldestQueuedAt: isoTimeSchema.nullable(),
  }),
  /** Newest first, at most 50. */
  deadJobs: z.array(deadJobSchema),
});
export type HealthAnswer = z.infer<typeof healthAnswerSchema>;

/** POST /api/health/repair: what the registration added or fixed, then the health after it. */
export const repairAnswerSchema = z.object({
  repaired: z.array(z.object({ kind: registrationItemSchema.shape.kind, name: z.string() })),
  health: healthAnswerSchema,
});
export type RepairAnswer = z.infer<typeof repairAnswerSchema>;

/** POST /api/jobs/:id/retry: the dead job queued again. */
export const retryJobAnswerSchema = z.object({ id: z.number().int(), status: z.literal('queued') });
export type RetryJobAnswer = z.infer<typeof retryJobAnswerSchema>;

// ---------------------------------------------------------------------------------------------
// POST /api/program/preview (server/routes/api-program-preview.ts)
// ---------------------------------------------------------------------------------------------

export const programPreviewAnswerSchema = z.object({
  /** The program currency every amount below is in. */
  currency: z.string(),
  deal: z.object({ amount: amountSchema, currency: z.string(), depth: z.number().int() }),
  /** False when the deal's currency has no rate on the portal (then `reason` says so). */
  priced: z.boolean(),
  reason: z.string().optional(),
  entries: z.array(
    z.object({
      beneficiary: z.enum(['referrer', 'referee', 'client']),
      reason: z.string(),
      /** Referrer level, 1 = the direct referrer; 0 for the referee and the client. */
      level: z.number().int(),
      amount: amountSchema,
      /** What the cap per referral cut from this entry. */
      capped: amountSchema,
      status: z.enum(['pending', 'available']),
      availableAt: isoTimeSchema,
    }),
  ),
  total: amountSchema,
  fx: z.object({ currency: z.string(), rate: z.string(), amount: amountSchema }).nullable(),
});
export type ProgramPreviewAnswer = z.infer<typeof programPreviewAnswerSchema>;
