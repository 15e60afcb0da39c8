/**
 * The one SQL schema of Sarafan (PostgreSQL 14+, also run on PGlite). Migrations in
 * ./migrations are generated from this file with `npm run db:generate`.
 *
 * Every row belongs to a portal (STYLE.md practice 15): every table carries `portal_id`
 * (installations.id), primary keys and indexes lead with it, and references between portal-owned
 * rows are composite foreign keys on (portal_id, …), so a row can never point into another
 * portal. The ledger is append-only: a trigger (migration 0001) refuses UPDATE of its rows.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  serial,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
// Migration 0014 (analytics summaries).
import { date } from 'drizzle-orm/pg-core';
// Migrations 0015/0016 (member_won_scoped).
import { numeric } from 'drizzle-orm/pg-core';
import type {
  CouponStatus,
  AgentClass,
  CrmEntity,
  CurrencyRate,
  InstallationStatus,
  JobKind,
  RobotAnswer,
  RobotCode,
  JobStatus,
  LedgerKind,
  LedgerReason,
  ProjectionValues,
  ReferralSource,
  ReferralStatus,
  RegistrationReport,
  RejectReason,
  WatermarkName,
  FeedbackStatus,
  FeedbackTarget,
  PersonEntity,
  RfmSegment,
} from '../handlers/ports.js';

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const portalId = () => integer('portal_id').notNull().references(() => installations.id);

export const installations = pgTable(
  'installations',
  {
    id: serial('id').primaryKey(),
    memberId: text('member_id').notNull().unique('installations_member_id_uq'),
    domain: text('domain').notNull(),
    clientEndpoint: text('client_endpoint').notNull(),
    serverEndpoint: text('server_endpoint').notNull(),
    status: text('status').$type<InstallationStatus>().notNull().default('new'),
    scope: text('scope').notNull().default(''),
    userId: integer('user_id'),
    // AES-256-GCM envelopes from crypto.ts, never plaintext.
    applicationTokenEnc: text('application_token_enc'),
    accessTokenEnc: text('access_token_enc'),
    refreshTokenEnc: text('refresh_token_enc'),
    expiresAt: at('expires_at'),
    registration: jsonb('registration').$type<RegistrationReport>(),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
    installedAt: at('installed_at'),
    uninstalledAt: at('uninstalled_at'),
    /** The installation in its public referral links (SPEC 3 `/r/:portal/:code`), never the member_id. */
    publicId: text('public_id').notNull().default(sql`left(md5(gen_random_uuid()::text), 20)`),
    /** Salts the hashes of link visitors' addresses (no address is stored). */
    linkSalt: text('link_salt').notNull().default(sql`md5(gen_random_uuid()::text)`),
    /** The install wizard's LANG: the language of the referral link's page. */
    lang: text('lang'),
    /** When a CRM event of the portal was last received (migration 0012; written at most once a minute). */
    lastEventAt: at('last_event_at'),
  },
  (t) => [
    check('installations_status_check', sql`status IN ('new', 'active', 'uninstalled')`),
    uniqueIndex('installations_public_id_uq').on(t.publicId),
  ],
);

export const members = pgTable(
  'members',
  {
    portalId: portalId(),
    id: bigserial('id', { mode: 'number' }).notNull(),
    contactId: integer('contact_id'),
    leadId: integer('lead_id'),
    /** Upper-case; the member's current code (all codes ever given live in referral_codes). */
    code: text('code'),
    joinedAt: at('joined_at'),
    createdAt: at('created_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'members_pk', columns: [t.portalId, t.id] }),
    uniqueIndex('members_contact_uq').on(t.portalId, t.contactId).where(sql`contact_id IS NOT NULL`),
    uniqueIndex('members_lead_uq').on(t.portalId, t.leadId).where(sql`lead_id IS NOT NULL`),
    check('members_entity_check', sql`contact_id IS NOT NULL OR lead_id IS NOT NULL`),
  ],
);

/** Every code ever given on a portal; rows are kept forever so a code is never reused. */
export const referralCodes = pgTable(
  'referral_codes',
  {
    portalId: portalId(),
    code: text('code').notNull(),
    memberId: bigint('member_id', { mode: 'number' }).notNull(),
    createdAt: at('created_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'referral_codes_pk', columns: [t.portalId, t.code] }),
    foreignKey({ name: 'referral_codes_member_fk', columns: [t.portalId, t.memberId], foreignColumns: [members.portalId, members.id] }),
    index('referral_codes_member_idx').on(t.portalId, t.memberId),
    check('referral_codes_upper_check', sql`code = upper(code)`),
  ],
);

export const referrals = pgTable(
  'referrals',
  {
    portalId: portalId(),
    id: bigserial('id', { mode: 'number' }).notNull(),
    refereeMemberId: bigint('referee_member_id', { mode: 'number' }).notNull(),
    referrerMemberId: bigint('referrer_member_id', { mode: 'number' }),
    code: text('code'),
    source: text('source').$type<ReferralSource>().notNull(),
    sourceRef: text('source_ref').notNull(),
    status: text('status').$type<ReferralStatus>().notNull(),
    rejectReason: text('reject_reason').$type<RejectReason>(),
    createdAt: at('created_at').notNull(),
    // An admin's override of a rejection (migration 0008): the reason stays for the record.
    overriddenBy: integer('overridden_by'),
    overriddenAt: at('overridden_at'),
    overrideComment: text('override_comment'),
  },
  (t) => [
    primaryKey({ name: 'referrals_pk', columns: [t.portalId, t.id] }),
    foreignKey({ name: 'referrals_referee_fk', columns: [t.portalId, t.refereeMemberId], foreignColumns: [members.portalId, members.id] }),
    foreignKey({ name: 'referrals_referrer_fk', columns: [t.portalId, t.referrerMemberId], foreignColumns: [members.portalId, members.id] }),
    // First attribution wins: at most one active referral per referee.
    uniqueIndex('referrals_active_referee_uq').on(t.portalId, t.refereeMemberId).where(sql`status = 'active'`),
    // A rejection is recorded once per (referee, referrer, reason); 0 stands for "no referrer"
    // because NULLS NOT DISTINCT needs PostgreSQL 15.
    uniqueIndex('referrals_rejected_uq')
      .on(t.portalId, t.refereeMemberId, sql`coalesce(referrer_member_id, 0)`, t.rejectReason)
      .where(sql`status = 'rejected'`),
    index('referrals_referee_idx').on(t.portalId, t.refereeMemberId),
    index('referrals_referrer_idx').on(t.portalId, t.referrerMemberId),
    check('referrals_status_check', sql`status IN ('active', 'rejected')`),
    index('referrals_status_idx').on(t.portalId, t.status, t.id),
    // Migration 0010 (analytics funnel: referred leads by period).
    index('referrals_created_idx').on(t.portalId, t.createdAt).where(sql`status = 'active'`),
    check(
      'referrals_reason_check',
      sql`(status = 'rejected' AND reject_reason IS NOT NULL) OR (status = 'active' AND (reject_reason IS NULL OR overridden_at IS NOT NULL))`,
    ),
  ],
);

/**
 * Referral link clicks (SPEC 3, 8 funnel): when, which code (and its member), a salted hash of
 * the visitor's address and a coarse class of its user agent — nothing that names a person.
 */
export const referralClicks = pgTable(
  'referral_clicks',
  {
    portalId: portalId(),
    id: bigserial('id', { mode: 'number' }).notNull(),
    memberId: bigint('member_id', { mode: 'number' }).notNull(),
    code: text('code').notNull(),
    clickedAt: at('clicked_at').notNull(),
    visitorHash: text('visitor_hash').notNull(),
    agentClass: text('agent_class').$type<AgentClass>().notNull(),
  },
  (t) => [
    primaryKey({ name: 'referral_clicks_pk', columns: [t.portalId, t.id] }),
    foreignKey({ name: 'referral_clicks_member_fk', columns: [t.portalId, t.memberId], foreignColumns: [members.portalId, members.id] }),
    index('referral_clicks_time_idx').on(t.portalId, t.clickedAt),
    index('referral_clicks_member_idx').on(t.portalId, t.memberId, t.clickedAt),
    check('referral_clicks_agent_class_check', sql`agent_class IN ('desktop', 'mobile', 'bot', 'other')`),
  ],
);

export const programVersions = pgTable(
  'program_versions',
  {
    portalId: portalId(),
    version: integer('version').notNull(),
    document: jsonb('document').$type<unknown>().notNull(),
    createdAt: at('created_at').notNull(),
    createdBy: integer('created_by'),
  },
  (t) => [
    primaryKey({ name: 'program_versions_pk', columns: [t.portalId, t.version] }),
    check('program_versions_version_check', sql`version >= 1`),
  ],
);

export const ledgerEntries = pgTable(
  'ledger_entries',
  {
    id: bigserial('id', { mode: 'number' }).notNull(),
    portalId: portalId(),
    memberId: bigint('member_id', { mode: 'number' }).notNull(),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    reason: text('reason').$type<LedgerReason>().notNull(),
    kind: text('kind').$type<LedgerKind>().notNull(),
    dealId: integer('deal_id'),
    level: integer('level').notNull().default(0),
    programVersion: integer('program_version'),
    idempotencyKey: text('idempotency_key').notNull(),
    availableAt: at('available_at').notNull(),
    expiresAt: at('expires_at'),
    causedBy: text('caused_by').notNull(),
    comment: text('comment'),
    createdAt: at('created_at').notNull(),
    // Migration 0004: the conversion that priced the entry, and what the clamp policy and the
    // referrer's monthly cap held back.
    fxCurrency: text('fx_currency'),
    fxRate: text('fx_rate'),
    fxAmount: bigint('fx_amount', { mode: 'number' }),
    shortfall: bigint('shortfall', { mode: 'number' }).notNull().default(0),
    capped: bigint('capped', { mode: 'number' }).notNull().default(0),
  },
  (t) => [
    primaryKey({ name: 'ledger_entries_pk', columns: [t.portalId, t.id] }),
    foreignKey({ name: 'ledger_entries_member_fk', columns: [t.portalId, t.memberId], foreignColumns: [members.portalId, members.id] }),
    uniqueIndex('ledger_entries_idempotency_uq').on(t.portalId, t.idempotencyKey),
    index('ledger_entries_member_idx').on(t.portalId, t.memberId, t.availableAt),
    index('ledger_entries_deal_idx').on(t.portalId, t.dealId),
    // Bonus expiry looks for credits whose expiry passed since its last run.
    index('ledger_entries_expires_idx').on(t.portalId, t.expiresAt).where(sql`expires_at IS NOT NULL`),
    // Migrations 0013/0017: the admin's ledger search reads newest first by (created_at, id), filtered by
    // period, reason or kind; the SQL adds INCLUDE (reason, amount, deal_id) for reward cost's edges.
    index('ledger_entries_created_cover_idx').on(t.portalId, t.createdAt, t.id),
    index('ledger_entries_reason_created_idx').on(t.portalId, t.reason, t.createdAt, t.id),
    index('ledger_entries_kind_created_idx').on(t.portalId, t.kind, t.createdAt, t.id),
    check('ledger_entries_kind_check', sql`kind IN ('credit', 'reversal', 'correction')`),
    check('ledger_entries_level_check', sql`level >= 0`),
    check('ledger_entries_shortfall_check', sql`shortfall >= 0 AND capped >= 0`),
    // Migration 0010 (liability; hold maturation's window since 0017); the SQL adds INCLUDE (amount).
    index('ledger_entries_liability_idx').on(t.portalId, t.availableAt),
  ],
);

export const deals = pgTable(
  'deals',
  {
    portalId: portalId(),
    dealId: integer('deal_id').notNull(),
    clientMemberId: bigint('client_member_id', { mode: 'number' }),
    categoryId: integer('category_id').notNull(),
    stageId: text('stage_id').notNull(),
    stageSemantic: text('stage_semantic').$type<'P' | 'S' | 'F'>().notNull(),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    currency: text('currency').notNull(),
    won: boolean('won').notNull(),
    deleted: boolean('deleted').notNull(),
    firstWonAt: at('first_won_at'),
    programVersion: integer('program_version'),
    referralId: bigint('referral_id', { mode: 'number' }),
    updatedAt: at('updated_at').notNull(),
    // Migration 0004: the conversion fixed on first win (currency it converts from, decimal rate).
    fxCurrency: text('fx_currency'),
    fxRate: text('fx_rate'),
    // Migration 0010: when Sarafan first recorded the deal (analytics funnel); upserts keep it.
    seenAt: at('seen_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'deals_pk', columns: [t.portalId, t.dealId] }),
    foreignKey({ name: 'deals_client_fk', columns: [t.portalId, t.clientMemberId], foreignColumns: [members.portalId, members.id] }),
    foreignKey({ name: 'deals_referral_fk', columns: [t.portalId, t.referralId], foreignColumns: [referrals.portalId, referrals.id] }),
    index('deals_client_idx').on(t.portalId, t.clientMemberId),
    index('deals_referral_idx').on(t.portalId, t.referralId),
    check('deals_stage_semantic_check', sql`stage_semantic IN ('P', 'S', 'F')`),
    // Migration 0010 (analytics); the SQL adds INCLUDE columns drizzle cannot declare.
    index('deals_referred_seen_idx').on(t.portalId, t.seenAt).where(sql`referral_id IS NOT NULL`),
    index('deals_referred_won_idx').on(t.portalId, t.firstWonAt).where(sql`referral_id IS NOT NULL AND won AND NOT deleted`),
  ],
);

export const crmProjections = pgTable(
  'crm_projections',
  {
    portalId: portalId(),
    entity: text('entity').$type<CrmEntity>().notNull(),
    entityId: integer('entity_id').notNull(),
    values: jsonb('values').$type<ProjectionValues>().notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [primaryKey({ name: 'crm_projections_pk', columns: [t.portalId, t.entity, t.entityId] })],
);

/**
 * Deals the portal had won when Sarafan read its history (the install's backfill): "already a
 * customer" looks up a person's earliest win here, and analytics read the time before the install.
 */
export const historyDeals = pgTable(
  'history_deals',
  {
    portalId: portalId(),
    dealId: integer('deal_id').notNull(),
    contactId: integer('contact_id'),
    leadId: integer('lead_id'),
    categoryId: integer('category_id').notNull(),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    currency: text('currency').notNull(),
    wonAt: at('won_at').notNull(),
    createdAt: at('created_at'),
  },
  (t) => [
    primaryKey({ name: 'history_deals_pk', columns: [t.portalId, t.dealId] }),
    index('history_deals_contact_idx').on(t.portalId, t.contactId, t.wonAt).where(sql`contact_id IS NOT NULL`),
    index('history_deals_lead_idx').on(t.portalId, t.leadId, t.wonAt).where(sql`lead_id IS NOT NULL`),
  ],
);

export const jobs = pgTable(
  'jobs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    portalId: portalId(),
    kind: text('kind').$type<JobKind>().notNull(),
    key: text('key').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    status: text('status').$type<JobStatus>().notNull().default('queued'),
    attempts: integer('attempts').notNull().default(0),
    runAt: at('run_at').notNull(),
    lockedBy: text('locked_by'),
    lockedAt: at('locked_at'),
    lastError: text('last_error'),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    // Coalescing: one queued job per key. Serialization: one running job per key.
    uniqueIndex('jobs_queued_key_uq').on(t.portalId, t.kind, t.key).where(sql`status = 'queued'`),
    uniqueIndex('jobs_running_key_uq').on(t.portalId, t.kind, t.key).where(sql`status = 'running'`),
    index('jobs_claim_idx').on(t.status, t.runAt),
    // The installation health's dead-letter list (migration 0012); dead jobs are few, so it costs the queue nothing.
    index('jobs_dead_idx').on(t.portalId, t.updatedAt).where(sql`status = 'dead'`),
    check('jobs_status_check', sql`status IN ('queued', 'running', 'done', 'dead')`),
  ],
);

/**
 * How far each portal's periodic work has got (SPEC 6): per CRM entity, the DATE_MODIFY from
 * which the next reconciliation lists changes; for holds, the time up to which matured ledger
 * entries were projected. A mark never moves backwards; `updated_at` is when the work last
 * completed (the reconciliation lag).
 */
export const watermarks = pgTable(
  'watermarks',
  {
    portalId: portalId(),
    name: text('name').$type<WatermarkName>().notNull(),
    mark: at('mark').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [primaryKey({ name: 'watermarks_pk', columns: [t.portalId, t.name] })],
);

/**
 * Scheduled ticks claimed for the whole cluster (SPEC 6): the instance whose insert of
 * (name, tick_at) wins enqueues that tick's jobs; the others find the row and do nothing. The
 * one table no portal owns: a tick belongs to the cluster.
 */
export const scheduleTicks = pgTable(
  'schedule_ticks',
  {
    name: text('name').notNull(),
    tickAt: at('tick_at').notNull(),
    claimedAt: at('claimed_at').notNull(),
  },
  (t) => [primaryKey({ name: 'schedule_ticks_pk', columns: [t.name, t.tickAt] })],
);

/**
 * What Sarafan last read of a portal's settings (migration 0004): its UTC offset (from
 * `server.time`, for calendar months in the portal's zone) and its currency rates
 * (`crm.currency.list`). Re-read once `read_at` is a day old.
 */
export const portalSettings = pgTable(
  'portal_settings',
  {
    portalId: portalId(),
    utcOffsetMinutes: integer('utc_offset_minutes').notNull(),
    currencies: jsonb('currencies').$type<CurrencyRate[]>().notNull(),
    readAt: at('read_at').notNull(),
  },
  (t) => [primaryKey({ name: 'portal_settings_pk', columns: [t.portalId] })],
);

/**
 * Milestone coupons (SPEC 5.1 `coupons`): one row per (member, milestone), issued when the
 * member's qualified referrals reach milestone × everyReferrals, reversed when they drop below.
 * The money is in the ledger (reason 'coupon'); this row carries the code and its status.
 */
export const coupons = pgTable(
  'coupons',
  {
    portalId: portalId(),
    id: bigserial('id', { mode: 'number' }).notNull(),
    memberId: bigint('member_id', { mode: 'number' }).notNull(),
    milestone: integer('milestone').notNull(),
    code: text('code').notNull(),
    value: bigint('value', { mode: 'number' }).notNull(),
    status: text('status').$type<CouponStatus>().notNull(),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'coupons_pk', columns: [t.portalId, t.id] }),
    foreignKey({ name: 'coupons_member_fk', columns: [t.portalId, t.memberId], foreignColumns: [members.portalId, members.id] }),
    uniqueIndex('coupons_code_uq').on(t.portalId, t.code),
    uniqueIndex('coupons_milestone_uq').on(t.portalId, t.memberId, t.milestone),
    check('coupons_status_check', sql`status IN ('issued', 'reversed')`),
    check('coupons_milestone_check', sql`milestone >= 1`),
  ],
);

/** Promo-code campaigns (SPEC 5): a batch of one-time codes, each worth `value` (minor units). */
export const promoCampaigns = pgTable(
  'promo_campaigns',
  {
    portalId: portalId(),
    id: bigserial('id', { mode: 'number' }).notNull(),
    name: text('name').notNull(),
    value: bigint('value', { mode: 'number' }).notNull(),
    codeCount: integer('code_count').notNull(),
    expiresAt: at('expires_at'),
    createdBy: integer('created_by'),
    createdAt: at('created_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'promo_campaigns_pk', columns: [t.portalId, t.id] }),
    check('promo_campaigns_value_check', sql`value > 0`),
    check('promo_campaigns_count_check', sql`code_count > 0`),
  ],
);

/**
 * Every promo code, unique per portal and stored upper-case. A code is used once, ever: it is
 * claimed by a conditional update of `used_at` from NULL, which one caller wins.
 */
export const promoCodes = pgTable(
  'promo_codes',
  {
    portalId: portalId(),
    code: text('code').notNull(),
    campaignId: bigint('campaign_id', { mode: 'number' }).notNull(),
    usedByMemberId: bigint('used_by_member_id', { mode: 'number' }),
    usedAt: at('used_at'),
  },
  (t) => [
    primaryKey({ name: 'promo_codes_pk', columns: [t.portalId, t.code] }),
    foreignKey({ name: 'promo_codes_campaign_fk', columns: [t.portalId, t.campaignId], foreignColumns: [promoCampaigns.portalId, promoCampaigns.id] }),
    foreignKey({ name: 'promo_codes_member_fk', columns: [t.portalId, t.usedByMemberId], foreignColumns: [members.portalId, members.id] }),
    index('promo_codes_campaign_idx').on(t.portalId, t.campaignId, t.code),
    check('promo_codes_upper_check', sql`code = upper(code)`),
    check('promo_codes_used_check', sql`(used_by_member_id IS NULL) = (used_at IS NULL)`),
  ],
);

/**
 * Feedback in the CRM (issue 9): timeline comments and notifications Sarafan owes the portal,
 * one row per message key, recorded in the transaction of what caused it and sent by the
 * `crm.feedback` job; `sent` rows are never sent again.
 */
export const feedbackMessages = pgTable(
  'feedback_messages',
  {
    portalId: portalId(),
    id: bigserial('id', { mode: 'number' }).notNull(),
    key: text('key').notNull(),
    target: text('target').$type<FeedbackTarget>().notNull(),
    entity: text('entity').$type<CrmEntity>(),
    entityId: integer('entity_id'),
    userId: integer('user_id'),
    text: text('text').notNull(),
    status: text('status').$type<FeedbackStatus>().notNull().default('queued'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    createdAt: at('created_at').notNull(),
    sentAt: at('sent_at'),
  },
  (t) => [
    primaryKey({ name: 'feedback_messages_pk', columns: [t.portalId, t.id] }),
    uniqueIndex('feedback_messages_key_uq').on(t.portalId, t.key),
    index('feedback_messages_queued_idx').on(t.portalId, t.id).where(sql`status = 'queued'`),
    check(
      'feedback_messages_target_check',
      sql`(target = 'timeline' AND entity IN ('deal', 'contact', 'lead') AND entity_id IS NOT NULL) OR (target = 'notify' AND user_id IS NOT NULL)`,
    ),
    check('feedback_messages_status_check', sql`status IN ('queued', 'sent', 'dead')`),
  ],
);


/**
 * Automation robot calls (issue 10): one per (portal, event token), kept with the answer sent to
 * the workflow, so a repeated call is answered from here instead of acting twice.
 */
export const robotCalls = pgTable(
  'robot_calls',
  {
    portalId: portalId(),
    tokenHash: text('token_hash').notNull(),
    eventToken: text('event_token').notNull(),
    code: text('code').$type<RobotCode>().notNull(),
    documentId: text('document_id').notNull(),
    properties: jsonb('properties').$type<Record<string, string>>().notNull(),
    userId: integer('user_id'),
    answer: jsonb('answer').$type<RobotAnswer>(),
    createdAt: at('created_at').notNull(),
    answeredAt: at('answered_at'),
  },
  (t) => [primaryKey({ name: 'robot_calls_pk', columns: [t.portalId, t.tokenHash] })],
);

/**
 * RFM segments (issue 12, migration 0011): per person, the segment the nightly `segments.rfm`
 * job computed last (null: no longer a client) and the one last written to
 * UF_CRM_SARAFAN_SEGMENT, so each night writes only what changed.
 */
export const crmSegments = pgTable(
  'crm_segments',
  {
    portalId: portalId(),
    entity: text('entity').$type<PersonEntity>().notNull(),
    entityId: integer('entity_id').notNull(),
    segment: text('segment').$type<RfmSegment>(),
    computedAt: at('computed_at').notNull(),
    writtenSegment: text('written_segment').$type<RfmSegment>(),
    writtenAt: at('written_at'),
  },
  (t) => [
    primaryKey({ name: 'crm_segments_pk', columns: [t.portalId, t.entity, t.entityId] }),
    check('crm_segments_entity_check', sql`entity IN ('contact', 'lead')`),
    check('crm_segments_segment_check', sql`segment IN ('champion', 'loyal', 'promising', 'new', 'at_risk', 'sleeping', 'lost')`),
    check('crm_segments_written_check', sql`written_segment IN ('champion', 'loyal', 'promising', 'new', 'at_risk', 'sleeping', 'lost')`),
  ],
);

/**
 * Migration 0014 (analytics summaries, SPEC 11): the ledger's signed sum and count per portal, UTC
 * day of `created_at`, reason and the entry's deal's pipeline now (-1 = no deal row). Maintained
 * only by the triggers of 0014 (ledger insert/delete, deal insert/update/delete), never by code.
 */
export const ledgerDaily = pgTable(
  'ledger_daily',
  {
    portalId: portalId(),
    day: date('day', { mode: 'string' }).notNull(),
    reason: text('reason').notNull(),
    categoryId: integer('category_id').notNull(),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    entries: bigint('entries', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ name: 'ledger_daily_pk', columns: [t.portalId, t.day, t.reason, t.categoryId] })],
);

/**
 * Migration 0014: what will expire of each member's bonus, per instant after `computed_at` (the
 * FIFO replay's remainder of each lot at its expiry), valid while `outlook_version` equals
 * `ledger_version` — which a trigger bumps on every ledger write of the member, deleting the
 * member's `expiry_outlook` rows at the same time (so those rows are always current).
 */
export const expiryOutlookMembers = pgTable(
  'expiry_outlook_members',
  {
    portalId: integer('portal_id').notNull(),
    memberId: bigint('member_id', { mode: 'number' }).notNull(),
    ledgerVersion: bigint('ledger_version', { mode: 'number' }).notNull().default(1),
    outlookVersion: bigint('outlook_version', { mode: 'number' }),
    computedAt: at('computed_at'),
  },
  (t) => [primaryKey({ name: 'expiry_outlook_members_pk', columns: [t.portalId, t.memberId] })],
);

export const expiryOutlook = pgTable(
  'expiry_outlook',
  {
    portalId: integer('portal_id').notNull(),
    memberId: bigint('member_id', { mode: 'number' }).notNull(),
    expiresAt: at('expires_at').notNull(),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    computedAt: at('computed_at').notNull(),
  },
  // The SQL adds INCLUDE (amount, computed_at); 0014 also indexes ledger_entries (portal_id, expires_at) INCLUDE (member_id) for credits.
  (t) => [primaryKey({ name: 'expiry_outlook_pk', columns: [t.portalId, t.memberId, t.expiresAt] }), index('expiry_outlook_expires_idx').on(t.portalId, t.expiresAt)],
);

/** Migration 0018: a portal's link clicks per UTC day, kept by triggers on referral_clicks (analytics funnel). */
export const clicksDaily = pgTable(
  'clicks_daily',
  {
    portalId: integer('portal_id').notNull(),
    day: date('day', { mode: 'string' }).notNull(),
    clicks: bigint('clicks', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ name: 'clicks_daily_pk', columns: [t.portalId, t.day] })],
);

/**
 * Migrations 0015/0016: each member's won, not deleted deals per scope — a pipeline, or -1 for
 * all — (count, the one currency they are in or NULL once mixed, its amount, the fixed-rate ones
 * converted, bounds of the earliest and latest first win), kept by triggers on `deals` in the writer's
 * statement; read by the analytics LTV and tier distribution (analytics-repo).
 */
export const memberWonScoped = pgTable(
  'member_won_scoped',
  {
    portalId: integer('portal_id').notNull(),
    memberId: bigint('member_id', { mode: 'number' }).notNull(),
    scope: integer('scope').notNull(),
    wonCount: bigint('won_count', { mode: 'number' }).notNull(),
    currency: text('currency'),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    fixedCount: bigint('fixed_count', { mode: 'number' }).notNull(),
    fixedConverted: numeric('fixed_converted').notNull(),
    firstWonAt: at('first_won_at').notNull(),
    lastWonAt: at('last_won_at').notNull(),
  },
  (t) => [primaryKey({ name: 'member_won_scoped_pk', columns: [t.portalId, t.scope, t.memberId] })],
);
