/**
 * The interfaces the use cases need, owned by them (STYLE.md practice 5). Adapters live in
 * src/store (Store) and src/bitrix (PortalGateways, OAuthServer); server/main.ts picks them.
 *
 * Conventions: every row belongs to a portal (`portalId` = installations.id); amounts are
 * integers in minor units (kopecks); times are Date objects; entity ids are Bitrix24 numeric ids.
 */

// ---------------------------------------------------------------------------------------------
// Installations
// ---------------------------------------------------------------------------------------------

/** new → active → uninstalled (a reinstall takes an uninstalled portal back to new). */
export type InstallationStatus = 'new' | 'active' | 'uninstalled';

export interface PortalTokens {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires. */
  expiresAt: Date;
}

export interface Installation {
  id: number;
  memberId: string;
  /** Portal domain, e.g. `x.bitrix24.ru` (from the verified client endpoint). */
  domain: string;
  /** REST endpoint confirmed by the OAuth server, e.g. `https://x.bitrix24.ru/rest/`. */
  clientEndpoint: string;
  serverEndpoint: string;
  status: InstallationStatus;
  scope: string;
  /** The installing user (whose tokens the app uses). */
  userId: number | null;
  /** Decrypted; null until known. Compare only in constant time. */
  applicationToken: string | null;
  /** Decrypted; null once uninstalled. */
  tokens: PortalTokens | null;
  /** Summary of the last registration reconciliation (what was created/updated/failed). */
  registration: RegistrationReport | null;
  createdAt: Date;
  updatedAt: Date;
  installedAt: Date | null;
  uninstalledAt: Date | null;
  /** The installation in public referral links (random, stable; never the member_id). */
  publicId: string;
  /** Salts the hashes of referral link visitors' addresses. */
  linkSalt: string;
  /** The language the install wizard ran in (`LANG`, e.g. `ru`, `en`); null when not known. */
  lang: string | null;
}

export interface VerifiedInstall {
  memberId: string;
  domain: string;
  clientEndpoint: string;
  serverEndpoint: string;
  scope: string;
  userId: number | null;
  tokens: PortalTokens;
  /** Only set when it arrived with the install (wizard form or ONAPPINSTALL). */
  applicationToken?: string | null;
  /** The wizard's `LANG`; a missing one leaves the stored language as it is. */
  lang?: string;
}

export interface RegistrationReport {
  at: string; // ISO time
  created: string[];
  updated: string[];
  failed: { item: string; error: string }[];
  /**
   * Robot code → hash of the definition Sarafan last registered successfully. `bizproc.robot.list`
   * answers codes only, so this is how a changed robot is told from an unchanged one.
   */
  robots?: Record<string, string>;
}

export interface InstallationRepo {
  findByMemberId(memberId: string): Promise<Installation | null>;
  /** The installation a public referral link names. */
  findByPublicId(publicId: string): Promise<Installation | null>;
  get(id: number): Promise<Installation | null>;
  /** Ids of the installations in these states, ascending (scheduled work fans out over them). */
  listIds(statuses: InstallationStatus[]): Promise<number[]>;
  /**
   * Insert or update from OAuth-verified data. A new or previously uninstalled portal becomes
   * `new`; an `active` one stays `active`. Tokens are encrypted at rest. `applicationToken`
   * is changed only when the key is present and not undefined.
   */
  upsertVerified(input: VerifiedInstall, now: Date): Promise<Installation>;
  /** Persist rotated tokens (called by the gateway before it retries). */
  saveTokens(id: number, tokens: PortalTokens): Promise<void>;
  setApplicationToken(id: number, applicationToken: string): Promise<void>;
  /** new → active. No-op when already active. */
  activate(id: number, now: Date): Promise<void>;
  saveRegistration(id: number, report: RegistrationReport): Promise<void>;
  /**
   * → uninstalled; tokens are wiped. With `clean`, every portal-owned row (members, codes,
   * referrals, ledger, program versions, deals, history, projections, jobs, watermarks, link clicks) is deleted too.
   */
  markUninstalled(id: number, now: Date, clean: boolean): Promise<void>;
  /**
   * A CRM event of this portal was received at `at` (installation health, issue 12). Cheap enough
   * for the event hot path: the adapter writes at most once per EVENT_MARK_INTERVAL_MS per portal
   * (per process), so the stored time may trail the last event by up to that; it never moves back.
   */
  noteEvent(id: number, at: Date): Promise<void>;
  /** When the last CRM event of this portal was noted (null = none since the column exists). */
  lastEventAt(id: number): Promise<Date | null>;
}

/** How stale `InstallationRepo.lastEventAt` may be: at most one write per portal per minute. */
export const EVENT_MARK_INTERVAL_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// Members, codes, referrals
// ---------------------------------------------------------------------------------------------

export type PersonEntity = 'contact' | 'lead';

export interface Member {
  id: number;
  portalId: number;
  contactId: number | null;
  leadId: number | null;
  /** Upper-case referral code; null until enrolled. */
  code: string | null;
  joinedAt: Date | null;
  createdAt: Date;
}

export interface MemberRepo {
  get(portalId: number, memberId: number): Promise<Member | null>;
  getMany(portalId: number, memberIds: number[]): Promise<Member[]>;
  findByEntity(portalId: number, entity: PersonEntity, entityId: number): Promise<Member | null>;
  /** Code lookup is case-insensitive (codes are stored upper-case); finds retired codes too. */
  findByCode(portalId: number, code: string): Promise<Member | null>;
  /** Members bound to any of these contacts/leads (one query). */
  findByEntities(portalId: number, refs: PersonRef[]): Promise<Member[]>;
  /** Members by any code they were ever given (upper-case keys of the map); one query. */
  findByCodes(portalId: number, codes: string[]): Promise<Map<string, Member>>;
  /** Get or create the member bound to this contact/lead (race-safe). */
  ensure(portalId: number, entity: PersonEntity, entityId: number, now: Date): Promise<Member>;
  /** ensure() for many people at once (two statements); one member per ref, in any order. */
  ensureMany(portalId: number, refs: PersonRef[], now: Date): Promise<Member[]>;
  /**
   * A lead converted into a contact: the lead's member follows it (SPEC 5) — it becomes bound
   * to the contact too, keeping code, referral and history. When the contact already has a
   * member (or the lead's member already has another contact), that is left as it is and the
   * contact's member (if any) is returned.
   */
  attachContact(portalId: number, memberId: number, contactId: number): Promise<Member | null>;
  /**
   * Give the member a code (if it has none) and a joined date. Returns `code_taken` when the
   * code is already used on this portal (codes are never reused); the caller generates another.
   */
  enroll(portalId: number, memberId: number, code: string, now: Date): Promise<Member | 'code_taken'>;
  /**
   * enroll() for many members at once, inside the caller's transaction. Members that have a code
   * already are left as they are; `taken` lists the members whose proposed code was in use.
   */
  enrollMany(portalId: number, proposals: { memberId: number; code: string }[], now: Date): Promise<{ enrolled: Member[]; taken: number[] }>;
}

export type ReferralStatus = 'active' | 'rejected';
export type { RejectReason } from '../rules/attribute-referral.js';
import type { PersonRef, RejectReason } from '../rules/attribute-referral.js';
import type { Projection } from '../rules/project-to-crm.js';
export type { PersonRef } from '../rules/attribute-referral.js';
export type ReferralSource = 'deal' | 'contact' | 'lead' | 'manual' | 'link';

export interface NewReferral {
  portalId: number;
  refereeMemberId: number;
  referrerMemberId: number | null;
  code: string | null;
  source: ReferralSource;
  /** e.g. `deal:12`, `contact:7`. */
  sourceRef: string;
  status: ReferralStatus;
  rejectReason: RejectReason | null;
  createdAt: Date;
}

export interface Referral extends NewReferral {
  id: number;
  /** An admin turned this rejection into an active referral; `rejectReason` keeps why it was refused. */
  override: ReferralOverride | null;
}

export interface ReferralOverride {
  /** The admin's Bitrix24 user id. */
  by: number;
  at: Date;
  comment: string;
}

/** Why an override was refused: only a rejection with a referrer, for a referee without an active referral, can become active. */
export type OverrideRefusal = 'not_rejected' | 'no_referrer' | 'referee_has_referral';

export interface ReferralRepo {
  get(portalId: number, referralId: number): Promise<Referral | null>;
  /** The referee's active referral (at most one exists per referee). */
  activeFor(portalId: number, refereeMemberId: number): Promise<Referral | null>;
  /**
   * Insert. An `active` referral for a referee that already has one is not inserted (the
   * existing one is returned: first attribution wins). A `rejected` one identical in
   * (referee, referrer, reason) to an existing one is not inserted again.
   */
  record(input: NewReferral): Promise<Referral>;
  /** Referrer chain upwards through active referrals: [direct referrer, its referrer, …], at most `depth`. */
  chain(portalId: number, memberId: number, depth: number): Promise<number[]>;
  /** Active referrals of many referees at once, keyed by referee member id. */
  activeForMany(portalId: number, refereeMemberIds: number[]): Promise<Map<number, Referral>>;
  /** chain() for many members at once (one recursive query); members without a referrer map to []. */
  chains(portalId: number, memberIds: number[], depth: number): Promise<Map<number, number[]>>;
  /**
   * Turn a rejected referral into an active one (admin override), recording who, when and why.
   * Null when the portal has no such referral.
   */
  override(portalId: number, referralId: number, o: ReferralOverride): Promise<Referral | OverrideRefusal | null>;
  /** Referrals of the portal in one status, newest first, paged by id (`beforeId`: older than it). */
  list(portalId: number, q: { status: ReferralStatus; limit: number; beforeId?: number }): Promise<Referral[]>;
  /** Every referral (active or rejected) of these referees, newest first. */
  ofReferees(portalId: number, refereeMemberIds: number[]): Promise<Referral[]>;
  /**
   * Every referral (active or rejected) made by these referrers, oldest first (by id), at most
   * `limit` — one level of a referral tree.
   */
  ofReferrers(portalId: number, referrerMemberIds: number[], limit: number): Promise<Referral[]>;
  /** Number of active referrals whose referrer is each member. */
  countByReferrer(portalId: number, memberIds: number[]): Promise<Map<number, number>>;
  /**
   * Qualified referrals (SPEC 4.1 REFERRALS): distinct referees whose won deal pays each member a
   * direct (level 1) referral reward now — a reversed reward takes the referee out of the count.
   */
  qualifiedCount(portalId: number, memberIds: number[]): Promise<Map<number, number>>;
}

// ---------------------------------------------------------------------------------------------
// Referral link clicks (the top of the SPEC 8 funnel)
// ---------------------------------------------------------------------------------------------

export type { AgentClass } from '../rules/referral-landing.js';
import type { AgentClass } from '../rules/referral-landing.js';

export interface NewClick {
  portalId: number;
  memberId: number;
  /** The code as the member has it (upper-case). */
  code: string;
  clickedAt: Date;
  /** Salted hash of the visitor's address; the address itself is never stored. */
  visitorHash: string;
  agentClass: AgentClass;
}

export interface Click extends NewClick {
  id: number;
}

export interface ClickRepo {
  record(click: NewClick): Promise<Click>;
  /** The portal's clicks in [from, to), oldest first. */
  between(portalId: number, from: Date, to: Date): Promise<Click[]>;
}

// ---------------------------------------------------------------------------------------------
// Program versions
// ---------------------------------------------------------------------------------------------

export interface ProgramVersion {
  portalId: number;
  version: number;
  /** The validated program document (SPEC 5.1), as JSON. */
  document: unknown;
  createdAt: Date;
  createdBy: number | null;
}

export interface ProgramRepo {
  current(portalId: number): Promise<ProgramVersion | null>;
  get(portalId: number, version: number): Promise<ProgramVersion | null>;
  /** Stores a new version numbered current + 1 (race-safe) and returns it. */
  create(portalId: number, document: unknown, createdBy: number | null, now: Date): Promise<ProgramVersion>;
  /** The portal's versions, newest first, at most `limit`. */
  list(portalId: number, limit: number): Promise<ProgramVersion[]>;
}

// ---------------------------------------------------------------------------------------------
// Ledger (append-only)
// ---------------------------------------------------------------------------------------------

export type LedgerReason = 'referral' | 'welcome' | 'cashback' | 'coupon' | 'promo' | 'adjustment' | 'redemption' | 'expiry';
/** credit: first entry of a slot; reversal: brings a slot's net to 0; correction: any other change. */
export type LedgerKind = 'credit' | 'reversal' | 'correction';

export interface NewLedgerEntry {
  portalId: number;
  memberId: number;
  amount: number; // signed, minor units
  reason: LedgerReason;
  kind: LedgerKind;
  dealId: number | null;
  level: number; // 0 when not a referral level
  programVersion: number | null;
  idempotencyKey: string;
  /** Pending until this time, available from it. */
  availableAt: Date;
  expiresAt: Date | null;
  /** Who/what caused it: `deal:12`, `robot:<event_token hash>`, `user:5`. */
  causedBy: string;
  comment: string | null;
  createdAt: Date;
  /** The conversion that priced it, when its deal was in another currency (migration 0004). */
  fx?: FxUsed | null;
  /** Clamp policy: what a negative entry did not take back because the bonus was spent (≥ 0). */
  shortfall?: number;
  /** Monthly referrer cap: what the slot's desired amount was held back by, as of this entry (≥ 0). */
  capped?: number;
}

export interface LedgerEntry extends NewLedgerEntry {
  id: number;
  fx: FxUsed | null;
  shortfall: number;
  capped: number;
}

/** A deal amount converted into the program currency: `amount` in `currency` minor units × `rate`. */
export interface FxUsed {
  currency: string;
  /** Decimal text: one unit of `currency` in program currency units. */
  rate: string;
  /** The deal amount in `currency`, minor units. */
  amount: number;
}

export interface Balance {
  available: number;
  pending: number;
}

export interface LedgerRepo {
  /**
   * Append entries; an entry whose (portal, idempotencyKey) exists is skipped. Returns the
   * inserted entries and the keys that were duplicates.
   */
  append(entries: NewLedgerEntry[]): Promise<{ inserted: LedgerEntry[]; duplicates: string[] }>;
  forDeal(portalId: number, dealId: number): Promise<LedgerEntry[]>;
  /** Every entry of these deals, oldest first. */
  forDeals(portalId: number, dealIds: number[]): Promise<LedgerEntry[]>;
  /** Members with entries held when written that became available in (after, upTo], ascending. */
  maturing(portalId: number, after: Date, upTo: Date): Promise<number[]>;
  /** Available = sum of amounts with availableAt ≤ now; pending = the rest. Missing members → zeros. */
  balances(portalId: number, memberIds: number[], now: Date): Promise<Map<number, Balance>>;
  /**
   * Net referral credits each referrer holds from deals first won within [from, to) (a calendar
   * month), leaving out `excludeDealIds`; keyed `${memberId}:${from ISO}`. One query.
   */
  referralNetInMonths(portalId: number, months: { memberId: number; from: Date; to: Date }[], excludeDealIds: number[]): Promise<Map<string, number>>;
  /**
   * Deals first won within one of these referrer months whose referral slot for that referrer
   * was last written with a cap hold-back (capped > 0): they gain when room is freed. Ascending ids.
   */
  cappedDeals(portalId: number, months: { memberId: number; from: Date; to: Date }[]): Promise<number[]>;
  /** Every 'coupon' entry of these members, oldest first. */
  couponEntries(portalId: number, memberIds: number[]): Promise<LedgerEntry[]>;
  forMember(portalId: number, memberId: number, opts: { limit: number; beforeId?: number }): Promise<LedgerEntry[]>;
  /** The portal's entries written in [from, to) (either bound optional), ascending ids after `afterId`: the ledger export's pages. */
  page(portalId: number, q: { limit: number; afterId?: number; from?: Date; to?: Date }): Promise<LedgerEntry[]>;
  /** The entry written with this idempotency key, if any (a retried request answers it again). */
  byKey(portalId: number, idempotencyKey: string): Promise<LedgerEntry | null>;
  /** Every entry of these members, oldest (lowest id) first: bonus expiry replays them. */
  forMembers(portalId: number, memberIds: number[]): Promise<LedgerEntry[]>;
  /**
   * Members bonus expiry must look at, ascending: with entries whose `expiresAt` is in (after, upTo],
   * or with a deal's negative entry (a reversal) that became available in (after, upTo].
   */
  expiring(portalId: number, after: Date, upTo: Date): Promise<number[]>;
  /**
   * The admin's ledger search (issue 12): one query, newest first — by created_at, then id (ids
   * follow creation but for concurrent writers; the order lets a period be read from an index).
   */
  search(portalId: number, q: LedgerSearch): Promise<LedgerEntry[]>;
  /**
   * Referral rewards per referrer for the payouts CSV (issue 12): every member with a `referral`
   * entry written in [from, to) (either bound optional), ascending member ids. One aggregate
   * query for the whole period (paging it by member would re-read the period's entries per page).
   */
  referralTotals(portalId: number, q: { from?: Date; to?: Date; pendingAt: Date }): Promise<ReferralTotals[]>;
}

/** Filters of the ledger search; they combine with AND. */
export interface LedgerSearch {
  /** The member bound to this contact or lead (none bound: no entries). */
  person?: PersonRef;
  dealId?: number;
  reason?: LedgerReason;
  kind?: LedgerKind;
  /** Written at or after. */
  from?: Date;
  /** Written before. */
  to?: Date;
  /** Only entries older than this entry, in the search's order (the previous page's cursor). */
  beforeId?: number;
  limit: number;
}

/** One referrer's referral entries of a period, minor units. */
export interface ReferralTotals {
  memberId: number;
  /** Sum of the positive entries (credits and upward corrections), every level. */
  credited: number;
  /** Sum of the negative entries (reversals and downward corrections), as a positive amount. */
  reversed: number;
  /** Of credited − reversed: the part still pending at `pendingAt` (available_at after it). */
  pending: number;
}

// ---------------------------------------------------------------------------------------------
// Promo-code campaigns (SPEC 5)
// ---------------------------------------------------------------------------------------------

export interface NewPromoCampaign {
  portalId: number;
  name: string;
  /** What one code credits, minor units. */
  value: number;
  codeCount: number;
  /** Codes are refused from this time on (`campaign_over`); null = never. */
  expiresAt: Date | null;
  createdBy: number | null;
  createdAt: Date;
}

export interface PromoCampaign extends NewPromoCampaign {
  id: number;
}

export interface PromoCampaignSummary extends PromoCampaign {
  /** Codes activated so far. */
  used: number;
}

/** A code as the campaign's export shows it. */
export interface PromoCodeUse {
  code: string;
  usedAt: Date | null;
  /** The member who activated it. */
  usedBy: Member | null;
}

export interface PromoRepo {
  createCampaign(input: NewPromoCampaign): Promise<PromoCampaign>;
  /**
   * Insert codes of a campaign (one statement); a code already on the portal (any campaign) is
   * skipped. Returns the codes inserted.
   */
  addCodes(portalId: number, campaignId: number, codes: string[]): Promise<string[]>;
  /** The portal's campaigns, newest first, with how many codes were used. */
  campaigns(portalId: number): Promise<PromoCampaignSummary[]>;
  campaign(portalId: number, campaignId: number): Promise<PromoCampaignSummary | null>;
  /** A code (upper-case) with its campaign; null when the portal has no such code. */
  findCode(portalId: number, code: string): Promise<{ code: string; campaign: PromoCampaign; usedAt: Date | null; usedByMemberId: number | null } | null>;
  /** Marks an unused code used by the member: true for exactly one caller, however many race. */
  claim(portalId: number, code: string, memberId: number, now: Date): Promise<boolean>;
  /** A page of a campaign's codes in code order, after `afterCode`. */
  codes(portalId: number, campaignId: number, opts: { afterCode?: string; limit: number }): Promise<PromoCodeUse[]>;
}

// ---------------------------------------------------------------------------------------------
// Deals as Sarafan last saw them
// ---------------------------------------------------------------------------------------------

export interface DealState {
  portalId: number;
  dealId: number;
  /** The member of the deal's client (contact, else the lead it came from). */
  clientMemberId: number | null;
  categoryId: number;
  stageId: string;
  stageSemantic: 'P' | 'S' | 'F';
  amount: number; // minor units, deal currency
  currency: string;
  won: boolean;
  deleted: boolean;
  /** First time Sarafan saw the deal won (kept when it is un-won). */
  firstWonAt: Date | null;
  /** Program version that priced this deal (fixed on its first win). */
  programVersion: number | null;
  /** The referral (if any) this deal is attributed to. */
  referralId: number | null;
  updatedAt: Date;
  /** Currency the conversion was fixed for on first win (migration 0004); null/absent: none. */
  fxCurrency?: string | null;
  /** Decimal text: one unit of fxCurrency in the program currency, fixed with it. */
  fxRate?: string | null;
}

export interface DealRepo {
  get(portalId: number, dealId: number): Promise<DealState | null>;
  getMany(portalId: number, dealIds: number[]): Promise<DealState[]>;
  upsert(state: DealState): Promise<void>;
  upsertMany(states: DealState[]): Promise<void>;
  /** All known deals of a client member (for first-won-deal qualification). */
  forClient(portalId: number, clientMemberId: number): Promise<DealState[]>;
  /** All known deals of many clients at once. */
  forClients(portalId: number, clientMemberIds: number[]): Promise<DealState[]>;
}

// ---------------------------------------------------------------------------------------------
// CRM projections: what Sarafan last wrote to each CRM entity
// ---------------------------------------------------------------------------------------------

export type CrmEntity = 'deal' | 'contact' | 'lead';
/** What Sarafan last wrote to an entity, in domain form (src/rules/project-to-crm.ts). */
export type ProjectionValues = Projection;

export interface ProjectionRepo {
  getMany(portalId: number, keys: { entity: CrmEntity; entityId: number }[]): Promise<Map<string, ProjectionValues>>;
  /** Merge `values` into what is recorded for the entity. */
  save(portalId: number, entity: CrmEntity, entityId: number, values: ProjectionValues, now: Date): Promise<void>;
  /** Merge many at once (one statement). */
  saveMany(portalId: number, rows: { entity: CrmEntity; entityId: number; values: ProjectionValues }[], now: Date): Promise<void>;
}

/** Key used in ProjectionRepo.getMany results: `${entity}:${entityId}`. */
export const projectionKey = (entity: CrmEntity, entityId: number): string => `${entity}:${entityId}`;

// ---------------------------------------------------------------------------------------------
// The portal's history before the install (SPEC 6: backfill)
// ---------------------------------------------------------------------------------------------

/** A deal the portal had won when Sarafan read its history. */
export interface HistoricalWin {
  dealId: number;
  /** The client: the deal's contact and/or the lead it came from (either may be absent). */
  contactId: number | null;
  leadId: number | null;
  categoryId: number;
  amount: number; // minor units, deal currency
  currency: string;
  /** When it was won, as well as the portal tells (last stage change, else close date, else last change). */
  wonAt: Date;
  createdAt: Date | null;
}

/** Key used in HistoryRepo.firstWonAt results: `${entity}:${id}`. */
export const personKey = (p: PersonRef): string => `${p.entity}:${p.id}`;

export interface HistoryRepo {
  /** Insert, or refresh by (portal, deal): a second backfill rewrites what it reads again. */
  saveWins(portalId: number, wins: HistoricalWin[]): Promise<void>;
  /**
   * The earliest recorded win of each person — a contact is the deal's contact, a lead the lead
   * the deal came from — keyed by personKey; people with no recorded win are absent.
   */
  firstWonAt(portalId: number, people: PersonRef[]): Promise<Map<string, Date>>;
}

/** One answer of the portal while its history is read: deals in ascending id order. */
export interface HistoryPage {
  wins: HistoricalWin[];
  /** Contacts and leads carrying a Sarafan field (a code or a referrer's code); may repeat. */
  people: PersonRef[];
}

/** The portal's history that Sarafan needs, read in as few requests as the portal allows (SPEC 11). */
export interface CrmHistory {
  /** Hands every page to `onPage`, one after another; rejects (PortalCallError) when the portal fails. */
  read(installation: Installation, onPage: (page: HistoryPage) => Promise<void>): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Portal settings Sarafan reads (time zone, currency rates) and milestone coupons
// ---------------------------------------------------------------------------------------------

/** One row of the portal's currency list: `amountCnt` units of `currency` cost `amount` base units. */
export interface CurrencyRate {
  currency: string;
  /** Decimal text as the portal gives it, e.g. "90.0000". */
  amount: string;
  amountCnt: number;
  base: boolean;
}

export interface PortalSettings {
  /** The portal's UTC offset in minutes (its server time zone; Moscow +180). */
  utcOffsetMinutes: number;
  currencies: CurrencyRate[];
  readAt: Date;
}

export interface PortalSettingsRepo {
  get(portalId: number): Promise<PortalSettings | null>;
  save(portalId: number, settings: PortalSettings): Promise<void>;
}

export type CouponStatus = 'issued' | 'reversed';

export interface Coupon {
  portalId: number;
  id: number;
  memberId: number;
  /** 1 for the first `everyReferrals` qualified referrals, 2 for the next, … */
  milestone: number;
  code: string;
  value: number; // minor units
  status: CouponStatus;
  createdAt: Date;
  updatedAt: Date;
}

export interface CouponRepo {
  forMembers(portalId: number, memberIds: number[]): Promise<Coupon[]>;
  /**
   * Insert new coupons; a proposal whose code (or member milestone) is taken is not inserted and
   * is listed in `taken` so the caller proposes another code.
   */
  issueMany(portalId: number, proposals: { memberId: number; milestone: number; code: string; value: number }[], now: Date): Promise<{ issued: Coupon[]; taken: { memberId: number; milestone: number }[] }>;
  setStatus(portalId: number, ids: number[], status: CouponStatus, now: Date): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Automation robot calls (issue 10; reference §8.2–8.3)
// ---------------------------------------------------------------------------------------------

export const ROBOT_CODES = ['sarafan_accrue', 'sarafan_redeem', 'sarafan_status', 'sarafan_enroll', 'sarafan_promo'] as const;
export type RobotCode = (typeof ROBOT_CODES)[number];

/** What `bizproc.event.send` carries back to the workflow (every value as text: Bitrix24 types it by the robot's RETURN_PROPERTIES). */
export type RobotReturnValues = Record<string, string>;

export interface RobotAnswer {
  values: RobotReturnValues;
  /** The line shown in the robot's log. */
  log: string;
}

export interface NewRobotCall {
  portalId: number;
  /** SHA-256 hex of the event token: the key of the call. */
  tokenHash: string;
  eventToken: string;
  code: RobotCode;
  /** `document_id[2]` as it came, e.g. `DEAL_12`. */
  documentId: string;
  properties: Record<string, string>;
  /** `auth[user_id]`: the portal user the automation runs as (told in timeline comments); null when absent. */
  userId: number | null;
}

export interface RobotCall extends NewRobotCall {
  /** Decided once (first answer wins), then sent until the portal took it. */
  answer: RobotAnswer | null;
  /** When the portal took the answer; null while it is still owed. */
  createdAt: Date;
  answeredAt: Date | null;
}

export interface RobotCallRepo {
  /** Insert the call unless one with its token exists; `created` false returns the stored one. */
  record(call: NewRobotCall, now: Date): Promise<{ created: boolean; call: RobotCall }>;
  get(portalId: number, tokenHash: string): Promise<RobotCall | null>;
  /** Store the answer once; returns the stored one (the first answer wins over a later one). */
  saveAnswer(portalId: number, tokenHash: string, answer: RobotAnswer): Promise<RobotAnswer>;
  /** The portal took the answer. */
  markAnswered(portalId: number, tokenHash: string, now: Date): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Durable job queue
// ---------------------------------------------------------------------------------------------

/**
 * `crm.change`: one entity to re-read (events, reconciliation, hold maturation);
 * `crm.project`: the CRM fields a committed change owes (payload: members, deals);
 * `crm.feedback`: send the queued timeline comments and notifications (FeedbackRepo);
 * `app.reconcile`: the registration of SPEC 4; `backfill.crm`: the portal's history, read on
 * install; the scheduled ones (SPEC 6), one per portal and tick: `reconcile.crm` (list what
 * changed since the watermark), `holds.mature` (re-project members whose held rewards became
 * available), `queue.purge` (delete old done jobs), `bonus.expire` (write the expiry of bonus
 * whose `expires_at` passed, SPEC 5 `expiry.days`); `robot.run`: answer one automation robot call
 * (key: the call's token hash, payload: `{ tokenHash }`; the call itself is in RobotCallRepo).
 */
export type JobKind = 'crm.change' | 'crm.project' | 'crm.feedback' | 'app.reconcile' | 'backfill.crm' | 'robot.run' | ScheduledJobKind;
export type ScheduledJobKind = 'reconcile.crm' | 'holds.mature' | 'queue.purge' | 'bonus.expire' | 'segments.rfm';
export type JobStatus = 'queued' | 'running' | 'done' | 'dead';

export interface NewJob {
  portalId: number;
  kind: JobKind;
  /**
   * Coalescing key, e.g. `deal:12`. While a queued job with the same (portal, kind, key)
   * exists, enqueueing another adds nothing. Jobs with one key never run concurrently.
   */
  key: string;
  payload: Record<string, unknown>;
  runAt?: Date;
}

export interface Job {
  id: number;
  portalId: number;
  kind: JobKind;
  key: string;
  payload: Record<string, unknown>;
  status: JobStatus;
  attempts: number;
  runAt: Date;
  lockedBy: string | null;
  lockedAt: Date | null;
  lastError: string | null;
  createdAt: Date;
  /** When the job last changed state (for a dead job: when it died). */
  updatedAt: Date;
}

export interface JobQueue {
  /** Durable once the promise resolves. Returns false when coalesced into a queued job. */
  enqueue(job: NewJob, now: Date): Promise<boolean>;
  /**
   * Claim up to `limit` due jobs of one portal (the one with the oldest due job), skipping keys
   * that are running elsewhere; `FOR UPDATE SKIP LOCKED`, so concurrent claimers never share.
   */
  claim(workerId: string, limit: number, now: Date): Promise<Job[]>;
  complete(ids: number[], now: Date): Promise<void>;
  /** Complete the queued job of this key without running it (its work was done another way). */
  completeQueued(portalId: number, kind: JobKind, key: string, now: Date): Promise<void>;
  /** Back to queued at `retryAt`, or `dead` (dead-letter) when retryAt is null. */
  fail(id: number, error: string, retryAt: Date | null, now: Date): Promise<void>;
  /**
   * Renew the lease of the running jobs `workerId` holds (their lock time becomes `now`), so
   * that no other worker takes them for a dead one's. Returns how many it holds.
   */
  renew(workerId: string, now: Date): Promise<number>;
  /**
   * Running jobs locked before `lockedBefore` (their worker stopped renewing: it died) go back
   * to queued; `null` recovers every running job (the embedded store at start-up, where no
   * other process can hold one). A job whose key has a newer queued job merges into it.
   */
  recoverStale(lockedBefore: Date | null, now: Date): Promise<number>;
  depth(portalId?: number): Promise<{ queued: number; running: number; dead: number }>;
  /** Across portals, per state: how many jobs and the oldest `runAt` and `lockedAt` (operations: /metrics). */
  stats(portalId?: number): Promise<JobStats>;
  /** Delete the portal's done jobs last touched before `olderThan` (dead ones are kept); returns how many. */
  purgeDone(portalId: number, olderThan: Date): Promise<number>;
  /** The portal's dead jobs, most recently failed first (installation health). */
  deadJobs(portalId: number, limit: number): Promise<Job[]>;
  /**
   * A dead job of this portal goes back to queued, due `now`, with its attempts reset. When a
   * queued job of the same (portal, kind, key) exists (at most one may), the dead one is marked
   * done and merged into it instead — that job does the same work — and it becomes due `now`.
   */
  retryDead(portalId: number, id: number, now: Date): Promise<RetryDeadOutcome>;
}

/** `queued`/`merged` name the job that will run: the retried one, or the queued one it merged into. */
export type RetryDeadOutcome =
  | { status: 'queued'; id: number }
  | { status: 'merged'; id: number }
  | { status: 'not_found' }
  | { status: 'not_dead'; current: JobStatus };

// ---------------------------------------------------------------------------------------------
// Scheduled work (SPEC 6): ticks claimed for the cluster, per-portal watermarks
// ---------------------------------------------------------------------------------------------

export interface ScheduleRepo {
  /**
   * Claim the tick `tickAt` of schedule `name` for the whole cluster: true for exactly one
   * caller however many instances ask (the others get false). Forgets ticks older than a week.
   */
  claimTick(name: ScheduledJobKind, tickAt: Date, now: Date): Promise<boolean>;
}

/** `reconcile.<entity>`: the DATE_MODIFY to list changes from; `holds.mature`: matured up to. */
export type WatermarkName = `reconcile.${CrmEntity}` | 'holds.mature' | 'bonus.expire';

export interface Watermark {
  name: WatermarkName;
  mark: Date;
  /** When the work that set it last completed. */
  updatedAt: Date;
}

export interface WatermarkRepo {
  get(portalId: number, names: WatermarkName[]): Promise<Map<WatermarkName, Watermark>>;
  /** Insert or move the mark forward (a smaller mark leaves it where it is); `updatedAt` becomes `now`. */
  save(portalId: number, name: WatermarkName, mark: Date, now: Date): Promise<void>;
  /**
   * Seconds since each active portal's last completed reconciliation (the oldest of its entity
   * marks; since the install while it has none), by portal id.
   */
  reconcileLag(now: Date): Promise<Map<number, number>>;
}

export interface JobStateStats {
  count: number;
  oldestRunAt: Date | null;
  oldestLockedAt: Date | null;
}

export type JobStats = Record<Exclude<JobStatus, 'done'>, JobStateStats>;

// ---------------------------------------------------------------------------------------------
// The store as a whole
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Feedback in the CRM: timeline comments and notifications, recorded once per key, sent once
// ---------------------------------------------------------------------------------------------

export type PortalLang = 'ru' | 'en';
export type FeedbackTarget = 'timeline' | 'notify';
export type FeedbackStatus = 'queued' | 'sent' | 'dead';

/** Where a message goes: a CRM entity's timeline, or a portal user's notifications. */
export type FeedbackRecipient = { entity: CrmEntity; id: number } | { userId: number };

export interface NewFeedbackMessage {
  /** Unique per portal: a message with a key already recorded is not recorded (nor sent) again. */
  key: string;
  to: FeedbackRecipient;
  text: string;
}

export interface FeedbackMessage extends NewFeedbackMessage {
  id: number;
  portalId: number;
  status: FeedbackStatus;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  sentAt: Date | null;
}

export interface FeedbackRepo {
  /** Insert; keys already recorded are skipped. Returns how many were new. */
  record(portalId: number, messages: NewFeedbackMessage[], now: Date): Promise<number>;
  /** Queued messages, oldest first. */
  queued(portalId: number, limit: number): Promise<FeedbackMessage[]>;
  markSent(portalId: number, ids: number[], now: Date): Promise<void>;
  /** One more failed attempt each; `dead` ones are never tried again. */
  markFailed(portalId: number, failures: { id: number; error: string; dead: boolean }[]): Promise<void>;
  /** Messages about these keys' prefix, oldest first (tests and support). */
  byKeyPrefix(portalId: number, prefix: string): Promise<FeedbackMessage[]>;
}

// ---------------------------------------------------------------------------------------------
// Analytics (SPEC 8, issue 12): set-based sums over Sarafan's own tables, never the portal
// ---------------------------------------------------------------------------------------------

/** A period [from, to), an optional pipeline, and how to bring deal amounts into the program currency. */
export interface AnalyticsQuery {
  from: Date;
  to: Date;
  /** Deal category (pipeline) the deal figures are limited to; null = every pipeline. */
  category: number | null;
  /** The program currency. */
  currency: string;
  /** Today's rate (decimal text) of each convertible currency into the program currency; used when a deal has no rate fixed on first win. */
  rates: { currency: string; rate: string }[];
}

export interface ClientGroupSums {
  clients: number;
  /** Their won amounts, minor units of the program currency. */
  total: number;
  /** Clients with two or more won deals. */
  repeat: number;
}

export interface TopReferrerRow {
  memberId: number;
  contactId: number | null;
  leadId: number | null;
  code: string | null;
  wonReferredDeals: number;
  referredRevenue: number;
  earned: number;
}

export interface AnalyticsRepo {
  /** Referral link clicks in [from, to) per UTC month (`YYYY-MM`). */
  clicksByMonth(portalId: number, from: Date, to: Date): Promise<Map<string, number>>;
  /** Active referrals created in [from, to). */
  referredLeads(portalId: number, from: Date, to: Date): Promise<number>;
  /** Referred deals first seen in the period, per UTC month. */
  referredDealsByMonth(portalId: number, q: AnalyticsQuery): Promise<Map<string, number>>;
  /** Referred deals first won in the period and won now, per UTC month: count and converted amount. */
  wonReferredByMonth(portalId: number, q: AnalyticsQuery): Promise<Map<string, { deals: number; revenue: number }>>;
  /** Net reward entries (referral, welcome, cashback, coupon) written in the period, per UTC month and reason. */
  rewardCostByMonth(portalId: number, q: AnalyticsQuery): Promise<{ month: string; reason: string; amount: number }[]>;
  /** The referrers of the most referred revenue won in the period, best first. */
  topReferrers(portalId: number, q: AnalyticsQuery, limit: number): Promise<TopReferrerRow[]>;
  /** Clients with a won deal before `to` (deals and the install's history), referred and the others. */
  clientValue(portalId: number, q: AnalyticsQuery): Promise<{ referred: ClientGroupSums; others: ClientGroupSums }>;
  /** The whole portal's ledger split at `now` (as the member read model splits each balance). */
  liability(portalId: number, now: Date): Promise<Balance>;
  /**
   * Every entry available by `now + horizonMs` of the members holding a lot that expires in
   * (now, now + horizonMs] and whose stored expiry outlook is not current (see
   * expiringFromOutlook) — exactly what decideExpiry needs for their upcoming expiry — by member.
   */
  expiryCandidates(portalId: number, now: Date, horizonMs: number): Promise<Map<number, ExpiryEntryRow[]>>;
  /**
   * What expires in (now, now + horizonMs] of the members whose stored outlook is current (computed
   * from their ledger as it is, at or before `now`); the others are expiryCandidates'.
   */
  expiringFromOutlook(portalId: number, now: Date, horizonMs: number): Promise<number>;
  /** Up to `limit` members above `afterMemberId` holding a lot that expires after `now` whose outlook is not current, ascending. */
  staleExpiryOutlooks(portalId: number, now: Date, afterMemberId: number, limit: number): Promise<number[]>;
  /**
   * In a transaction, before reading the members' entries: locks their outlook rows (a concurrent
   * ledger write waits, or is waited for) and answers each one's ledger version.
   */
  lockExpiryOutlooks(portalId: number, memberIds: number[]): Promise<Map<number, number>>;
  /** Replaces the members' outlooks with what expires after `computedAt`, computed at `version`. */
  saveExpiryOutlooks(portalId: number, computedAt: Date, outlooks: { memberId: number; version: number; upcoming: { at: Date; amount: number }[] }[]): Promise<void>;
  /**
   * Members per tier bucket now: how many `thresholds` (ascending) each member's lifetime value
   * reaches (0 = none); value = won deal count or won amount in the program currency.
   */
  tierBuckets(portalId: number, q: { basis: 'won_amount' | 'won_count'; thresholds: number[]; currency: string; rates: AnalyticsQuery['rates'] }): Promise<Map<number, number>>;
}

/** A ledger entry as the expiry rule reads it. */
export interface ExpiryEntryRow {
  id: number;
  amount: number;
  reason: string;
  dealId: number | null;
  level: number;
  idempotencyKey: string;
  availableAt: Date;
  expiresAt: Date | null;
}

// ---------------------------------------------------------------------------------------------
// RFM segments (issue 12): what the nightly `segments.rfm` job computed and wrote to the CRM
// ---------------------------------------------------------------------------------------------

export type { RfmSegment } from '../rules/segment-clients.js';
import type { RfmSegment } from '../rules/segment-clients.js';

/** A client's won deals, summed (src/rules/segment-clients.ts ranks them). */
export interface ClientRfmFacts {
  client: PersonRef;
  lastWonAt: Date;
  wonDeals: number;
  /** Minor units of the program currency; deals that could not be converted are left out. */
  wonAmount: number;
  /** Won deals counted in R and F but not in M: no rate to the program currency. */
  unconvertedDeals: number;
}

/** A person's segment as last computed (null: no longer a client) and as last written to the CRM. */
export interface SegmentRow {
  client: PersonRef;
  segment: RfmSegment | null;
  written: RfmSegment | null;
}

export interface SegmentDistribution {
  /** Every segment, in RFM_SEGMENTS order, 0 included. */
  counts: { segment: RfmSegment; members: number }[];
  /** When the segments were last computed; null = never. */
  computedAt: Date | null;
}

export interface SegmentRepo {
  /**
   * R/F/M facts of every person with a won deal, in one set-based query: Sarafan's deals (won,
   * not deleted; the client member's contact, else lead; amount × the rate fixed at first win)
   * and the install's history (contact, else lead; converted with `rates`), a deal known to
   * both counted once, as Sarafan's deals row has it. `rates`: one unit of each currency in the
   * program currency; a deal in a currency without one counts in `unconvertedDeals`.
   */
  clientFacts(portalId: number, money: { currency: string; rates: { currency: string; rate: string }[] }): Promise<ClientRfmFacts[]>;
  /**
   * The run's segments replace the computed ones: the given people get theirs; everyone else
   * recorded gets null (no longer a client) and is forgotten once nothing was written for them.
   */
  saveComputed(portalId: number, rows: { client: PersonRef; segment: RfmSegment }[], now: Date): Promise<void>;
  /** People whose computed segment differs from the one last written, in (entity, id) order. */
  pendingWrites(portalId: number): Promise<SegmentRow[]>;
  /** Record what the CRM now shows (after the writes succeeded). */
  markWritten(portalId: number, rows: { client: PersonRef; segment: RfmSegment | null }[], now: Date): Promise<void>;
  distribution(portalId: number): Promise<SegmentDistribution>;
}

export interface Repos {
  installations: InstallationRepo;
  clicks: ClickRepo;
  members: MemberRepo;
  referrals: ReferralRepo;
  programs: ProgramRepo;
  ledger: LedgerRepo;
  deals: DealRepo;
  projections: ProjectionRepo;
  history: HistoryRepo;
  feedback: FeedbackRepo;
  jobs: JobQueue;
  schedule: ScheduleRepo;
  watermarks: WatermarkRepo;
  portalSettings: PortalSettingsRepo;
  coupons: CouponRepo;
  promo: PromoRepo;
  robotCalls: RobotCallRepo;
  analytics: AnalyticsRepo;
  segments: SegmentRepo;
}

export interface TxRepos extends Repos {
  /** Transaction-scoped advisory lock on (portal, key); released at commit/rollback. */
  lock(portalId: number, key: string): Promise<void>;
  /** lock() for many keys in one statement, taken in a fixed order (no deadlock between two callers). */
  lockMany(portalId: number, keys: string[]): Promise<void>;
}

export interface Store extends Repos {
  transaction<T>(fn: (tx: TxRepos) => Promise<T>): Promise<T>;
  /** Store reachable and every migration applied. */
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The portal (REST through one gateway per portal) and the OAuth server
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// The CRM, in domain terms (STYLE.md practice 16): the adapter (src/bitrix/crm.ts) owns methods,
// filters, batching and wire formats; a use case never names a REST method.
// ---------------------------------------------------------------------------------------------

export interface CrmDeal {
  id: number;
  stageId: string;
  /** Stage semantics: P in progress, S success (won), F failure. */
  semantic: 'P' | 'S' | 'F';
  amount: number; // minor units, deal currency
  currency: string;
  categoryId: number;
  /** The client: the deal's contact, else the lead it was converted from. */
  client: PersonRef | null;
  /** The lead the deal was converted from. */
  leadId: number | null;
  refCode: string | null;
  referrer: PersonRef | null;
  /** What Sarafan's computed fields show now. */
  shown: Projection;
  /** The deal's responsible user (ASSIGNED_BY_ID), told when the deal pays a referral reward. */
  assignedById: number | null;
}

export interface CrmPerson {
  entity: PersonEntity;
  id: number;
  refCode: string | null;
  referrer: PersonRef | null;
  /** For contacts: the lead this contact was converted from. */
  leadId: number | null;
  shown: Projection;
  /** Phone numbers and e-mail addresses as the CRM holds them (multi-fields PHONE, EMAIL), not normalised. */
  phones: string[];
  emails: string[];
  /** A lead's amount (minor units) and currency; null for contacts and for a lead without an amount. */
  opportunity: { amount: number; currency: string } | null;
}

/** "Not found" is an outcome (deleted, or never visible), apart from a failure to read. */
export type CrmRead<T> = { status: 'found'; record: T } | { status: 'not_found' } | { status: 'failed'; error: string };

/** `notFound`: the entity is gone, so there is nothing left to write to. */
export type CrmOutcome = { ok: true } | { ok: false; error: string; notFound: boolean };

export interface CrmWrite {
  entity: CrmEntity;
  id: number;
  values: Projection;
}

export interface CrmPort {
  /**
   * Deals and people by id, in as few requests as the portal allows. People keyed by `${entity}:${id}`.
   * With `settings`, the portal's time zone and currency rates are read in the same requests.
   */
  read(q: { deals: number[]; people: PersonRef[]; settings?: boolean }): Promise<{
    deals: Map<number, CrmRead<CrmDeal>>;
    people: Map<string, CrmRead<CrmPerson>>;
    settings?: CrmRead<Omit<PortalSettings, 'readAt'>>;
  }>;
  /** Absolute values of Sarafan's computed fields; outcomes in input order. */
  writeProjections(writes: CrmWrite[]): Promise<CrmOutcome[]>;
  /**
   * Feedback: timeline comments on deals, contacts or leads (`to: { entity, id }`) and system
   * notifications to portal users (`to: { userId }`; `tag` replaces an earlier notification with
   * the same tag), mixed in the same `batch` requests so that only the last one may be short;
   * outcomes in input order.
   */
  sendFeedback(messages: { to: FeedbackRecipient; text: string; tag?: string }[]): Promise<CrmOutcome[]>;
  /**
   * Answer a waiting automation robot: a line in the robot's log a person reads, then its return
   * values (reference §8.3). Outcomes: the log line's, then the answer's.
   */
  answerRobot(eventToken: string, values: RobotReturnValues, log: string): Promise<CrmOutcome[]>;
  /**
   * Names and means of contact of many people (the payouts CSV), as the CRM holds them now, in as
   * few requests as the portal allows; keyed by personKey. A person the portal does not list
   * (deleted, or hidden from the token) is `not_found`.
   */
  contactDetails(people: PersonRef[]): Promise<Map<string, CrmRead<PersonDetails>>>;
}

/** What a payout needs to reach a person: the CRM's name parts, phones and e-mails (not normalised). */
export interface PersonDetails {
  name: string | null;
  secondName: string | null;
  lastName: string | null;
  phones: string[];
  emails: string[];
}

export interface CrmPorts {
  forInstallation(installation: Installation): CrmPort;
}

/** An entity the portal lists as modified; `modifiedAt` null when its DATE_MODIFY was unreadable. */
export interface ChangedEntity {
  id: number;
  modifiedAt: Date | null;
}

export interface ChangedEntities {
  /** Ascending ids. */
  entities: ChangedEntity[];
  /** More may follow the last id: ask again with it as `afterId`. */
  more: boolean;
  /** The portal's own clock when it began listing; null when its answer did not say. */
  listedAt: Date | null;
}

/** What changed in a portal's CRM (the periodic reconciliation of SPEC 6). */
export interface CrmScanner {
  /**
   * Entities of one kind modified at or after `since` with ids above `afterId`, in id order:
   * as many as one request lists.
   */
  changedSince(installation: Installation, entity: CrmEntity, since: Date, afterId: number): Promise<ChangedEntities>;
}

export interface PortalUser {
  userId: number;
  isAdmin: boolean;
}

/** What use cases may ask of the portal gateways; REST itself goes through the domain ports above. */
export interface PortalGateways {
  /** Drop the cached gateway (after uninstall or token change). */
  forget(memberId: string): void;
  /**
   * Ask the portal (at its stored endpoint) who owns a user access token: `profile` called with
   * that token. Null when the portal refuses the token.
   */
  whoIs(portal: Pick<Installation, 'memberId' | 'clientEndpoint'>, userAccessToken: string): Promise<PortalUser | null>;
}

export interface OAuthGrant {
  accessToken: string;
  refreshToken: string;
  expiresAt: Date;
  memberId: string;
  clientEndpoint: string;
  serverEndpoint: string;
  scope: string;
  userId: number | null;
  status: string;
}

export interface OAuthServer {
  /**
   * Exchange a refresh token at B24_OAUTH_URL. Resolves the confirmed grant (new tokens,
   * the portal's REST endpoint); throws AppError('install_unverified') when the server rejects
   * the token, AppError('portal_unavailable') when it cannot be reached.
   */
  refresh(refreshToken: string): Promise<OAuthGrant>;
}

// ---------------------------------------------------------------------------------------------
// Process-level services
// ---------------------------------------------------------------------------------------------

export interface Clock {
  now(): Date;
}

/** Structured logger (pino-compatible subset). Never pass tokens in `fields`. */
export interface Log {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
  debug(fields: Record<string, unknown>, msg: string): void;
}

/** Registration reconciliation of SPEC 4 (fields, events, placements, robots) for one installation. */
export interface Registrar {
  reconcile(installation: Installation): Promise<RegistrationReport>;
}

/** One thing Sarafan registers on a portal (SPEC 4), as the portal has it now. */
export interface RegistrationItem {
  kind: 'field' | 'event' | 'placement' | 'robot';
  /** `UF_CRM_SARAFAN_CODE (deal)`, `ONCRMDEALUPDATE`, `CRM_DEAL_DETAIL_TAB`, `sarafan_accrue`. */
  name: string;
  present: boolean;
  /** What is wrong when present but not as Sarafan registers it; null when nothing is. */
  problem: string | null;
}

/** `error` is a sentence for an admin (why the portal could not be read), never a token. */
export type RegistrationInspection = { ok: true; items: RegistrationItem[] } | { ok: false; error: string };

/** Reads only: inspecting a portal never changes it. */
export interface RegistrationInspector {
  inspect(installation: Installation): Promise<RegistrationInspection>;
}

/** Everything a use case may touch; chosen once in server/main.ts. */
export interface Deps {
  store: Store;
  gateways: PortalGateways;
  crm: CrmPorts;
  crmScanner: CrmScanner;
  oauth: OAuthServer;
  registrar: Registrar;
  crmHistory: CrmHistory;
  clock: Clock;
  log: Log;
  /** APP_BASE_URL without a trailing slash: every URL given to a portal is built from it. */
  appBaseUrl: string;
  randomBytes: (n: number) => Uint8Array;
  /** What the portal has of Sarafan's registration now (installation health, issue 12). */
  registration: RegistrationInspector;
  /**
   * Feedback (send-feedback.ts): how long a short last `batch` of a burst's messages waits for more
   * of them; default FEEDBACK_HOLD_MS, 0 sends every message at once.
   */
  feedbackHoldMs?: number;
}
