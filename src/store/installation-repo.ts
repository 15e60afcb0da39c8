/**
 * Installations as a state machine (STYLE.md practice 7): new → active → uninstalled, and a
 * reinstall takes an uninstalled portal back to new. Tokens (OAuth pair and application_token)
 * are stored only as AES-GCM envelopes.
 */
import { and, asc, eq, inArray, ne, sql, type SQL } from 'drizzle-orm';
import { EVENT_MARK_INTERVAL_MS, type Installation, type InstallationRepo, type PortalTokens, type RegistrationReport, type VerifiedInstall } from '../handlers/ports.js';
import type { TokenCipher } from './crypto.js';
import { tsParam, type Db } from './db.js';
import {
  coupons,
  crmProjections,
  deals,
  feedbackMessages,
  historyDeals,
  installations,
  jobs,
  ledgerEntries,
  members,
  portalSettings,
  programVersions,
  promoCampaigns,
  promoCodes,
  referralClicks,
  referralCodes,
  referrals,
  watermarks,
  robotCalls,
} from './schema.js';

type Row = typeof installations.$inferSelect;

export function createInstallationRepo(db: Db, cipher: TokenCipher): InstallationRepo {
  const decryptOrNull = (value: string | null) => (value === null ? null : cipher.decrypt(value));

  const toInstallation = (row: Row): Installation => ({
    id: row.id,
    memberId: row.memberId,
    domain: row.domain,
    clientEndpoint: row.clientEndpoint,
    serverEndpoint: row.serverEndpoint,
    status: row.status,
    scope: row.scope,
    userId: row.userId,
    applicationToken: decryptOrNull(row.applicationTokenEnc),
    tokens:
      row.accessTokenEnc !== null && row.refreshTokenEnc !== null && row.expiresAt !== null
        ? { accessToken: cipher.decrypt(row.accessTokenEnc), refreshToken: cipher.decrypt(row.refreshTokenEnc), expiresAt: row.expiresAt }
        : null,
    registration: row.registration,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    installedAt: row.installedAt,
    uninstalledAt: row.uninstalledAt,
    publicId: row.publicId,
    linkSalt: row.linkSalt,
    lang: row.lang,
  });

  const encryptTokens = (tokens: PortalTokens) => ({
    accessTokenEnc: cipher.encrypt(tokens.accessToken),
    refreshTokenEnc: cipher.encrypt(tokens.refreshToken),
    expiresAt: tokens.expiresAt,
  });

  /**
   * When this process last wrote each portal's last_event_at (the time written, by the caller's
   * clock). The event route notes every CRM event; one UPDATE per portal per interval keeps the
   * ingest budget (SPEC 11) — a write per event would double the hot path's statements.
   */
  const eventMarks = new Map<number, number>();

  async function one(where: SQL): Promise<Installation | null> {
    const [row] = await db.select().from(installations).where(where).limit(1);
    return row ? toInstallation(row) : null;
  }

  return {
    findByMemberId: (memberId) => one(eq(installations.memberId, memberId)),

    findByPublicId: (publicId) => one(eq(installations.publicId, publicId)),

    get: (id) => one(eq(installations.id, id)),

    async listIds(statuses) {
      if (!statuses.length) return [];
      const rows = await db.select({ id: installations.id }).from(installations).where(inArray(installations.status, statuses)).orderBy(asc(installations.id));
      return rows.map((r) => r.id);
    },

    async upsertVerified(input: VerifiedInstall, now: Date) {
      const tokens = encryptTokens(input.tokens);
      const applicationTokenEnc =
        input.applicationToken === undefined ? undefined : input.applicationToken === null ? null : cipher.encrypt(input.applicationToken);
      const common = {
        domain: input.domain,
        clientEndpoint: input.clientEndpoint,
        serverEndpoint: input.serverEndpoint,
        scope: input.scope,
        userId: input.userId,
        ...tokens,
        updatedAt: now,
      };
      const wasUninstalled = sql`${installations.status} = 'uninstalled'`;
      const [row] = await db
        .insert(installations)
        .values({ memberId: input.memberId, status: 'new', applicationTokenEnc: applicationTokenEnc ?? null, lang: input.lang ?? null, createdAt: now, ...common })
        .onConflictDoUpdate({
          target: installations.memberId,
          set: {
            ...common,
            // An active portal stays active (token refresh, ONAPPUPDATE); anything else restarts at new.
            status: sql`CASE WHEN ${installations.status} = 'active' THEN 'active' ELSE 'new' END`,
            installedAt: sql`CASE WHEN ${wasUninstalled} THEN NULL ELSE ${installations.installedAt} END`,
            uninstalledAt: sql`CASE WHEN ${wasUninstalled} THEN NULL ELSE ${installations.uninstalledAt} END`,
            ...(applicationTokenEnc === undefined ? {} : { applicationTokenEnc }),
            ...(input.lang === undefined ? {} : { lang: input.lang }),
          },
        })
        .returning();
      if (!row) throw new Error('installations upsert returned no row');
      return toInstallation(row);
    },

    async saveTokens(id, tokens) {
      // Never resurrect tokens of an uninstalled portal (a refresh racing the uninstall).
      await db
        .update(installations)
        .set({ ...encryptTokens(tokens), updatedAt: new Date() })
        .where(and(eq(installations.id, id), ne(installations.status, 'uninstalled')));
    },

    async setApplicationToken(id, applicationToken) {
      await db
        .update(installations)
        .set({ applicationTokenEnc: cipher.encrypt(applicationToken), updatedAt: new Date() })
        .where(eq(installations.id, id));
    },

    async activate(id, now) {
      await db
        .update(installations)
        .set({ status: 'active', installedAt: now, updatedAt: now })
        .where(and(eq(installations.id, id), eq(installations.status, 'new')));
    },

    async saveRegistration(id, report: RegistrationReport) {
      await db.update(installations).set({ registration: report, updatedAt: new Date() }).where(eq(installations.id, id));
    },

    async markUninstalled(id, now, clean) {
      await db.transaction(async (tx) => {
        // The application_token stays: later calls of this portal are still authenticated with it.
        await tx
          .update(installations)
          .set({ status: 'uninstalled', accessTokenEnc: null, refreshTokenEnc: null, expiresAt: null, uninstalledAt: now, updatedAt: now })
          .where(eq(installations.id, id));
        if (!clean) return;
        // Children before parents (composite foreign keys). The only DELETE of ledger rows in code.
        await tx.delete(deals).where(eq(deals.portalId, id));
        await tx.delete(historyDeals).where(eq(historyDeals.portalId, id));
        await tx.delete(coupons).where(eq(coupons.portalId, id));
        await tx.delete(portalSettings).where(eq(portalSettings.portalId, id));
        await tx.delete(promoCodes).where(eq(promoCodes.portalId, id));
        await tx.delete(robotCalls).where(eq(robotCalls.portalId, id));
        await tx.delete(promoCampaigns).where(eq(promoCampaigns.portalId, id));
        await tx.delete(referralClicks).where(eq(referralClicks.portalId, id));
        await tx.delete(ledgerEntries).where(eq(ledgerEntries.portalId, id));
        await tx.delete(referrals).where(eq(referrals.portalId, id));
        await tx.delete(referralCodes).where(eq(referralCodes.portalId, id));
        await tx.delete(members).where(eq(members.portalId, id));
        await tx.delete(programVersions).where(eq(programVersions.portalId, id));
        await tx.delete(crmProjections).where(eq(crmProjections.portalId, id));
        await tx.delete(jobs).where(eq(jobs.portalId, id));
        await tx.delete(watermarks).where(eq(watermarks.portalId, id));
        await tx.delete(feedbackMessages).where(eq(feedbackMessages.portalId, id));
      });
    },

    async noteEvent(id, at) {
      const last = eventMarks.get(id);
      // Also skips a time before the last one written (it cannot move the stored time anyway).
      if (last !== undefined && at.getTime() - last < EVENT_MARK_INTERVAL_MS) return;
      // Marked before the write: a burst of events arriving while it runs does not write again.
      if (eventMarks.size >= 100_000) eventMarks.clear();
      eventMarks.set(id, at.getTime());
      try {
        // greatest(): another instance (or a delayed call) never moves the time back.
        await db
          .update(installations)
          .set({ lastEventAt: sql`greatest(${installations.lastEventAt}, ${tsParam(at)})` })
          .where(eq(installations.id, id));
      } catch (e) {
        // Not written: the next event tries again.
        if (last === undefined) eventMarks.delete(id);
        else eventMarks.set(id, last);
        throw e;
      }
    },

    async lastEventAt(id) {
      const [row] = await db.select({ at: installations.lastEventAt }).from(installations).where(eq(installations.id, id)).limit(1);
      return row?.at ?? null;
    },
  };
}

/**
 * The event hot path authenticates every event by member_id (SPEC 6: ≥ 1 000 events/s). A
 * short-lived cache of `findByMemberId` (unknown members included) saves a round trip per
 * event; every write through this repository clears it, so this process never sees its own
 * changes late. Another instance's change (uninstall, token rotation) is seen within `ttlMs`.
 */
export function withMemberCache(repo: InstallationRepo, ttlMs = 2_000, maxEntries = 10_000): InstallationRepo {
  const cache = new Map<string, { at: number; value: Installation | null }>();
  const clearing =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } finally {
        cache.clear();
      }
    };
  return {
    async findByMemberId(memberId) {
      const now = Date.now();
      const hit = cache.get(memberId);
      if (hit && now - hit.at < ttlMs) return hit.value;
      const value = await repo.findByMemberId(memberId);
      if (cache.size >= maxEntries) cache.clear();
      cache.set(memberId, { at: now, value });
      return value;
    },
    get: (id) => repo.get(id),
    findByPublicId: (publicId) => repo.findByPublicId(publicId),
    listIds: (statuses) => repo.listIds(statuses),
    upsertVerified: clearing(repo.upsertVerified),
    saveTokens: clearing(repo.saveTokens),
    setApplicationToken: clearing(repo.setApplicationToken),
    activate: clearing(repo.activate),
    saveRegistration: clearing(repo.saveRegistration),
    markUninstalled: clearing(repo.markUninstalled),
    // Not part of the cached Installation: nothing to clear.
    noteEvent: (id, at) => repo.noteEvent(id, at),
    lastEventAt: (id) => repo.lastEventAt(id),
  };
}
