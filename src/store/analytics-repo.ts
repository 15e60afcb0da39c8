/**
 * Analytics SQL (SPEC 8): each figure is one set-based statement over Sarafan's own tables, always
 * within one portal, answering sums in minor units of the program currency. How each figure is
 * defined is written at its method and in README "Analytics: how each figure is computed".
 *
 * Currency: a deal's amount is in its own currency. It is converted as pricing converted it — with
 * the rate fixed on its first win when that rate is for its currency, else with today's rate from
 * the portal's stored list (`q.rates`) — and rounded once per deal, half away from zero
 * (PostgreSQL's numeric round() does exactly what money.ts convertMinor does). A deal that cannot
 * be converted is left out of amounts (not out of counts).
 */
import { sql, type SQL } from 'drizzle-orm';
import type { AnalyticsQuery, AnalyticsRepo, ClientGroupSums, ExpiryEntryRow } from '../handlers/ports.js';
import { rowsOf, tsParam, type Db } from './db.js';

type Num = string | number;
const n = (v: Num | null | undefined): number => (v === null || v === undefined ? 0 : Number(v));

// Months are UTC calendar months, as the answer's `monthly` rows are.
const monthOf = (column: SQL): SQL => sql`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM')`;

/** `rates(currency, rate)`: a CTE of today's rates into the program currency. */
function ratesCte(rates: AnalyticsQuery['rates']): SQL {
  const rows = rates.length ? rates : [{ currency: '', rate: '1' }];
  return sql`rates(currency, rate) AS (VALUES ${sql.join(
    rows.map((r) => sql`(${r.currency}::text, ${r.rate}::numeric)`),
    sql`, `,
  )})`;
}

/**
 * A deal's amount in the program currency (null = cannot be converted). `d` has amount,
 * currency and (for `deals`) fx_currency/fx_rate; `r` is its LEFT JOIN on rates.
 */
function converted(currency: string, d: string, r: string, fixed = true): SQL {
  const a = sql.raw(d);
  const rr = sql.raw(r);
  const fx = fixed ? sql`WHEN ${a}.fx_currency = ${a}.currency AND ${a}.fx_rate IS NOT NULL THEN round(${a}.amount * ${a}.fx_rate::numeric)` : sql``;
  return sql`(CASE WHEN ${a}.currency = ${currency} THEN ${a}.amount::numeric ${fx} ELSE round(${a}.amount * ${rr}.rate) END)`;
}

const inCategory = (alias: string, category: number | null): SQL => (category === null ? sql`` : sql`AND ${sql.raw(alias)}.category_id = ${category}`);

const DAY = 86_400_000;
const dayText = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * [from, to) as the whole UTC days inside it (`wholeFrom` … `wholeTo`, dates, end exclusive) and
 * the partial edges read from raw entries. Without a whole day the summary range is empty and
 * the one edge is the whole period.
 */
export function splitDays(from: Date, to: Date): { wholeFrom: string; wholeTo: string; edges: [Date, Date][] } {
  const first = Math.ceil(from.getTime() / DAY) * DAY;
  const last = Math.floor(to.getTime() / DAY) * DAY;
  if (first >= last) return { wholeFrom: dayText(first), wholeTo: dayText(first), edges: [[from, to]] };
  return { wholeFrom: dayText(first), wholeTo: dayText(last), edges: [[from, new Date(first)], [new Date(last), to]] };
}

/**
 * The members of a portal whose stored expiry outlook is not current at `now`: written since it
 * was computed (the stale index of 0016), or computed after `now` (a clock moved back). Every
 * member with ledger entries has an expiry_outlook_members row (0014's trigger, 0016's backfill),
 * so these are all the members an outlook cannot answer for.
 */
const staleOutlookMembers = (portalId: number, now: Date): SQL => sql`(
  SELECT s.member_id FROM expiry_outlook_members s WHERE s.portal_id = ${portalId} AND s.outlook_version IS DISTINCT FROM s.ledger_version
  UNION
  SELECT s.member_id FROM expiry_outlook_members s WHERE s.portal_id = ${portalId} AND s.computed_at > ${tsParam(now)}
)`;

/** Whether member `member` holds a credit expiring in (after, until] (until null = any time after). */
const holdsExpiringCredit = (portalId: number, member: SQL, after: Date, until: Date | null): SQL => sql`EXISTS (
  SELECT 1 FROM ledger_entries c
  WHERE c.portal_id = ${portalId} AND c.member_id = ${member} AND c.expires_at > ${tsParam(after)} AND c.amount > 0
    ${until === null ? sql`` : sql`AND c.expires_at <= ${tsParam(until)}`}
)`;

export function createAnalyticsRepo(db: Db): AnalyticsRepo {
  return {
    // Clicks are not tied to a pipeline: the category filter does not apply to them. Whole UTC
    // days come from clicks_daily (migration 0018), the partial days at the period's edges from
    // the clicks themselves.
    async clicksByMonth(portalId, from, to) {
      const { wholeFrom, wholeTo, edges } = splitDays(from, to);
      const rows = rowsOf<{ month: string; n: Num }>(
        await db.execute(sql`
          SELECT month, sum(n) AS n FROM (
            SELECT to_char(day, 'YYYY-MM') AS month, clicks AS n
            FROM clicks_daily WHERE portal_id = ${portalId} AND day >= ${wholeFrom}::date AND day < ${wholeTo}::date
            UNION ALL
            SELECT ${monthOf(sql`clicked_at`)} AS month, 1 AS n
            FROM referral_clicks
            WHERE portal_id = ${portalId}
              AND (${sql.join(
                edges.map(([a, b]) => sql`(clicked_at >= ${tsParam(a)} AND clicked_at < ${tsParam(b)})`),
                sql` OR `,
              )})
          ) x
          GROUP BY 1`),
      );
      return new Map(rows.map((r) => [r.month, n(r.n)]));
    },

    // A referral (of a lead or a contact) is not tied to a pipeline either.
    async referredLeads(portalId, from, to) {
      const [row] = rowsOf<{ n: Num }>(
        await db.execute(sql`
          SELECT count(*) AS n FROM referrals
          WHERE portal_id = ${portalId} AND status = 'active' AND created_at >= ${tsParam(from)} AND created_at < ${tsParam(to)}`),
      );
      return n(row?.n);
    },

    async referredDealsByMonth(portalId, q) {
      const rows = rowsOf<{ month: string; n: Num }>(
        await db.execute(sql`
          SELECT ${monthOf(sql`d.seen_at`)} AS month, count(*) AS n
          FROM deals d
          WHERE d.portal_id = ${portalId} AND d.referral_id IS NOT NULL
            AND d.seen_at >= ${tsParam(q.from)} AND d.seen_at < ${tsParam(q.to)} ${inCategory('d', q.category)}
          GROUP BY 1`),
      );
      return new Map(rows.map((r) => [r.month, n(r.n)]));
    },

    async wonReferredByMonth(portalId, q) {
      const rows = rowsOf<{ month: string; n: Num; revenue: Num | null }>(
        await db.execute(sql`
          WITH ${ratesCte(q.rates)}
          SELECT ${monthOf(sql`d.first_won_at`)} AS month, count(*) AS n, sum(${converted(q.currency, 'd', 'r')}) AS revenue
          FROM deals d LEFT JOIN rates r ON r.currency = d.currency
          WHERE d.portal_id = ${portalId} AND d.referral_id IS NOT NULL AND d.won AND NOT d.deleted
            AND d.first_won_at >= ${tsParam(q.from)} AND d.first_won_at < ${tsParam(q.to)} ${inCategory('d', q.category)}
          GROUP BY 1`),
      );
      return new Map(rows.map((r) => [r.month, { deals: n(r.n), revenue: n(r.revenue) }]));
    },

    // The signed sum: credits minus reversals (and corrections) of the reward reasons. With a
    // pipeline, only entries of that pipeline's deals count — coupons have no deal, so they
    // count only without one. Whole UTC days come from ledger_daily (migration 0014, same
    // semantics: the deal's pipeline now); the partial days at either edge of the period from
    // the entries themselves.
    async rewardCostByMonth(portalId, q) {
      const { wholeFrom, wholeTo, edges } = splitDays(q.from, q.to);
      const reasons = sql`('referral', 'welcome', 'cashback', 'coupon')`;
      const byCategory =
        q.category === null
          ? sql``
          : sql`AND EXISTS (SELECT 1 FROM deals d WHERE d.portal_id = l.portal_id AND d.deal_id = l.deal_id AND d.category_id = ${q.category})`;
      const summaryCategory = q.category === null ? sql`` : sql`AND s.category_id = ${q.category}`;
      const rows = rowsOf<{ month: string; reason: string; amount: Num }>(
        await db.execute(sql`
          SELECT month, reason, sum(amount) AS amount FROM (
            SELECT to_char(s.day, 'YYYY-MM') AS month, s.reason, s.amount
            FROM ledger_daily s
            WHERE s.portal_id = ${portalId} AND s.day >= ${wholeFrom}::date AND s.day < ${wholeTo}::date
              AND s.reason IN ${reasons} ${summaryCategory}
            UNION ALL
            SELECT ${monthOf(sql`l.created_at`)} AS month, l.reason, l.amount
            FROM ledger_entries l
            WHERE l.portal_id = ${portalId}
              AND (${sql.join(
                edges.map(([a, b]) => sql`(l.created_at >= ${tsParam(a)} AND l.created_at < ${tsParam(b)})`),
                sql` OR `,
              )})
              AND l.reason IN ${reasons} ${byCategory}
          ) x
          GROUP BY 1, 2`),
      );
      return rows.map((r) => ({ month: r.month, reason: r.reason, amount: n(r.amount) }));
    },

    // Referrer = the referrer of the won deal's referral; `earned` = their referral entries
    // written in the period (of the pipeline's deals when one is chosen).
    async topReferrers(portalId, q, limit) {
      const byCategory =
        q.category === null
          ? sql``
          : sql`AND EXISTS (SELECT 1 FROM deals d2 WHERE d2.portal_id = l.portal_id AND d2.deal_id = l.deal_id AND d2.category_id = ${q.category})`;
      const rows = rowsOf<{ member_id: Num; contact_id: number | null; lead_id: number | null; code: string | null; deals: Num; revenue: Num | null; earned: Num | null }>(
        await db.execute(sql`
          WITH ${ratesCte(q.rates)},
          won AS (
            SELECT rf.referrer_member_id AS member_id, count(*) AS deals, coalesce(sum(${converted(q.currency, 'd', 'r')}), 0) AS revenue
            FROM deals d
            JOIN referrals rf ON rf.portal_id = d.portal_id AND rf.id = d.referral_id
            LEFT JOIN rates r ON r.currency = d.currency
            WHERE d.portal_id = ${portalId} AND d.referral_id IS NOT NULL AND d.won AND NOT d.deleted
              AND d.first_won_at >= ${tsParam(q.from)} AND d.first_won_at < ${tsParam(q.to)} ${inCategory('d', q.category)}
              AND rf.referrer_member_id IS NOT NULL
            GROUP BY 1
            ORDER BY revenue DESC, deals DESC, member_id
            LIMIT ${limit}
          )
          SELECT w.member_id, m.contact_id, m.lead_id, m.code, w.deals, w.revenue,
            (SELECT sum(l.amount) FROM ledger_entries l
             WHERE l.portal_id = ${portalId} AND l.member_id = w.member_id AND l.reason = 'referral'
               AND l.created_at >= ${tsParam(q.from)} AND l.created_at < ${tsParam(q.to)} ${byCategory}) AS earned
          FROM won w JOIN members m ON m.portal_id = ${portalId} AND m.id = w.member_id
          ORDER BY w.revenue DESC, w.deals DESC, w.member_id`),
      );
      return rows.map((r) => ({
        memberId: n(r.member_id),
        contactId: r.contact_id,
        leadId: r.lead_id,
        code: r.code,
        wonReferredDeals: n(r.deals),
        referredRevenue: n(r.revenue),
        earned: n(r.earned),
      }));
    },

    // A client is a person (contact, else lead; a lead that became a member's contact is that
    // contact) with a won deal before `to`: Sarafan's deals (won now, not deleted) plus the
    // install's history, a deal in both counted once from `deals`. Referred = the person is a
    // member with an active referral as referee. Deals that cannot be converted are left out.
    //
    // A member is one person (members are unique per contact and per lead), so the deals side is
    // one row per member from member_won_scoped (0016) for the pipeline or all of them. A member
    // whose earliest win is at or after `to` has none in the period; one whose deals are mixed or
    // at today's rate in another currency, or whose wins may lie on both sides of `to`, is summed
    // from `deals` instead, converting per deal.
    // History deals join their member (by contact, or by lead); the others are persons alone.
    async clientValue(portalId, q) {
      const byCategory = (alias: string) => inCategory(alias, q.category);
      const rows = rowsOf<{ referred: boolean; clients: Num; total: Num | null; repeat: Num }>(
        await db.execute(sql`
          WITH ${ratesCte(q.rates)},
          s AS (
            SELECT member_id, won_count AS deals,
                   CASE WHEN last_won_at >= ${tsParam(q.to)} THEN NULL
                        WHEN currency = ${q.currency} THEN amount::numeric
                        WHEN currency IS NOT NULL AND fixed_count = won_count THEN fixed_converted END AS settled
            FROM member_won_scoped WHERE portal_id = ${portalId} AND scope = ${q.category ?? -1} AND first_won_at < ${tsParam(q.to)}
          ),
          dm AS (
            SELECT member_id, deals, settled AS total FROM s WHERE settled IS NOT NULL
            UNION ALL
            SELECT d.client_member_id, count(*), sum(x.amount)
            FROM deals d LEFT JOIN rates r ON r.currency = d.currency
            CROSS JOIN LATERAL (SELECT ${converted(q.currency, 'd', 'r')} AS amount) x
            WHERE d.portal_id = ${portalId} AND d.won AND NOT d.deleted AND d.first_won_at < ${tsParam(q.to)} ${byCategory('d')}
              AND d.client_member_id IN (SELECT member_id FROM s WHERE settled IS NULL) AND x.amount IS NOT NULL
            GROUP BY 1
          ),
          hist AS (
            SELECT coalesce(mc.id, ml.id) AS member_id, coalesce(h.contact_id, -h.lead_id) AS person, x.amount
            FROM history_deals h
            LEFT JOIN members mc ON h.contact_id IS NOT NULL AND mc.portal_id = h.portal_id AND mc.contact_id = h.contact_id
            LEFT JOIN members ml ON h.contact_id IS NULL AND ml.portal_id = h.portal_id AND ml.lead_id = h.lead_id
            LEFT JOIN rates r ON r.currency = h.currency
            CROSS JOIN LATERAL (SELECT ${converted(q.currency, 'h', 'r', false)} AS amount) x
            WHERE h.portal_id = ${portalId} AND h.won_at < ${tsParam(q.to)} ${byCategory('h')}
              AND x.amount IS NOT NULL AND (h.contact_id IS NOT NULL OR h.lead_id IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.portal_id = h.portal_id AND d.deal_id = h.deal_id)
          ),
          hm AS (SELECT member_id, count(*) AS deals, sum(amount) AS total FROM hist WHERE member_id IS NOT NULL GROUP BY 1),
          people AS (
            SELECT coalesce(dm.member_id, hm.member_id) AS member_id, coalesce(dm.deals, 0) + coalesce(hm.deals, 0) AS deals,
                   coalesce(dm.total, 0) + coalesce(hm.total, 0) AS total
            FROM dm FULL JOIN hm ON hm.member_id = dm.member_id
          ),
          flagged AS (
            SELECT p.member_id IN (SELECT rf.referee_member_id FROM referrals rf WHERE rf.portal_id = ${portalId} AND rf.status = 'active') AS referred,
                   p.deals, p.total
            FROM people p
            UNION ALL
            SELECT false, count(*), sum(amount) FROM hist WHERE member_id IS NULL GROUP BY person
          )
          SELECT referred, count(*) AS clients, sum(total) AS total, count(*) FILTER (WHERE deals >= 2) AS repeat
          FROM flagged GROUP BY 1`),
      );
      const group = (referred: boolean): ClientGroupSums => {
        const row = rows.find((r) => r.referred === referred);
        return { clients: n(row?.clients), total: n(row?.total), repeat: n(row?.repeat) };
      };
      return { referred: group(true), others: group(false) };
    },

    // Exactly the read model's split (ledger-repo balances): available = entries available by now.
    // The total of every entry is ledger_daily's (0014); pending — entries not yet available — is
    // a short index range (holds last days), so available = total − pending.
    async liability(portalId, now) {
      const [row] = rowsOf<{ total: Num | null; pending: Num | null }>(
        await db.execute(sql`
          SELECT (SELECT sum(amount) FROM ledger_daily WHERE portal_id = ${portalId}) AS total,
                 (SELECT sum(amount) FROM ledger_entries WHERE portal_id = ${portalId} AND available_at > ${tsParam(now)}) AS pending`),
      );
      return { available: n(row?.total) - n(row?.pending), pending: n(row?.pending) };
    },

    // Only a member holding a lot that expires within the horizon can have bonus expiring in it;
    // entries available after the horizon cannot change what expires before it (expiry.ts).
    // decideExpiry reads idempotency keys of expiry entries only: the others' are not fetched.
    async expiryCandidates(portalId, now, horizonMs) {
      const until = new Date(now.getTime() + horizonMs);
      const rows = rowsOf<{
        member_id: Num;
        id: Num;
        amount: Num;
        reason: string;
        deal_id: number | null;
        level: number;
        idempotency_key: string;
        available_at: string | Date;
        expires_at: string | Date | null;
      }>(
        await db.execute(sql`
          SELECT l.member_id, l.id, l.amount, l.reason, l.deal_id, l.level, CASE WHEN l.reason = 'expiry' THEN l.idempotency_key ELSE '' END AS idempotency_key, l.available_at, l.expires_at
          FROM ledger_entries l
          WHERE l.portal_id = ${portalId} AND l.available_at <= ${tsParam(until)}
            AND l.member_id IN (
              SELECT x.member_id FROM ${staleOutlookMembers(portalId, now)} x
              WHERE ${holdsExpiringCredit(portalId, sql`x.member_id`, now, until)}
            )
          ORDER BY l.member_id, l.id`),
      );
      const result = new Map<number, ExpiryEntryRow[]>();
      for (const r of rows) {
        const memberId = n(r.member_id);
        const entry: ExpiryEntryRow = {
          id: n(r.id),
          amount: n(r.amount),
          reason: r.reason,
          dealId: r.deal_id,
          level: r.level,
          idempotencyKey: r.idempotency_key,
          availableAt: new Date(r.available_at),
          expiresAt: r.expires_at === null ? null : new Date(r.expires_at),
        };
        const list = result.get(memberId);
        if (list) list.push(entry);
        else result.set(memberId, [entry]);
      }
      return result;
    },

    // expiry_outlook rows exist only while current (0014's trigger deletes them on a ledger write).
    async expiringFromOutlook(portalId, now, horizonMs) {
      const until = new Date(now.getTime() + horizonMs);
      const [row] = rowsOf<{ amount: Num | null }>(
        await db.execute(sql`
          SELECT sum(o.amount) AS amount FROM expiry_outlook o
          WHERE o.portal_id = ${portalId} AND o.expires_at > ${tsParam(now)} AND o.expires_at <= ${tsParam(until)} AND o.computed_at <= ${tsParam(now)}`),
      );
      return n(row?.amount);
    },

    async staleExpiryOutlooks(portalId, now, afterMemberId, limit) {
      const rows = rowsOf<{ member_id: Num }>(
        await db.execute(sql`
          SELECT x.member_id FROM ${staleOutlookMembers(portalId, now)} x
          WHERE x.member_id > ${afterMemberId} AND ${holdsExpiringCredit(portalId, sql`x.member_id`, now, null)}
          ORDER BY 1 LIMIT ${limit}`),
      );
      return rows.map((r) => n(r.member_id));
    },

    async lockExpiryOutlooks(portalId, memberIds) {
      if (memberIds.length === 0) return new Map();
      const ids = sql`${`{${memberIds.map((id) => String(id)).join(',')}}`}::bigint[]`;
      // Every member with entries has a row (0014's trigger, 0016's backfill); this only guarantees each
      // id a version (1, as the trigger would start it) should one be missing.
      await db.execute(sql`
        INSERT INTO expiry_outlook_members (portal_id, member_id)
        SELECT ${portalId}, id FROM unnest(${ids}) id ORDER BY 2
        ON CONFLICT (portal_id, member_id) DO NOTHING`);
      const rows = rowsOf<{ member_id: Num; ledger_version: Num }>(
        await db.execute(sql`
          SELECT member_id, ledger_version FROM expiry_outlook_members
          WHERE portal_id = ${portalId} AND member_id = ANY(${ids})
          ORDER BY member_id FOR UPDATE`),
      );
      return new Map(rows.map((r) => [n(r.member_id), n(r.ledger_version)]));
    },

    async saveExpiryOutlooks(portalId, computedAt, outlooks) {
      if (outlooks.length === 0) return;
      const ids = sql`${`{${outlooks.map((o) => String(o.memberId)).join(',')}}`}::bigint[]`;
      await db.execute(sql`DELETE FROM expiry_outlook WHERE portal_id = ${portalId} AND member_id = ANY(${ids})`);
      const rows = outlooks.flatMap((o) => o.upcoming.map((u) => sql`(${portalId}::integer, ${o.memberId}::bigint, ${tsParam(u.at)}::timestamptz, ${u.amount}::bigint, ${tsParam(computedAt)}::timestamptz)`));
      for (let i = 0; i < rows.length; i += 1000) {
        await db.execute(sql`INSERT INTO expiry_outlook (portal_id, member_id, expires_at, amount, computed_at) VALUES ${sql.join(rows.slice(i, i + 1000), sql`, `)}`);
      }
      const versions = sql.join(
        outlooks.map((o) => sql`(${o.memberId}::bigint, ${o.version}::bigint)`),
        sql`, `,
      );
      await db.execute(sql`
        UPDATE expiry_outlook_members s SET outlook_version = v.version, computed_at = ${tsParam(computedAt)}
        FROM (VALUES ${versions}) v(member_id, version)
        WHERE s.portal_id = ${portalId} AND s.member_id = v.member_id`);
    },

    // The read model's tier basis (member-summaries.ts): the member's deals won now and not
    // deleted, at their converted amounts (unconvertible = 0); members without such deals have 0.
    // Read from member_won_scoped (0016), one row per member for all pipelines, taken as it is
    // when its deals are in the program currency or all at a fixed rate; any other member (mixed
    // currencies, today's rate) is converted from `deals`, rounded per deal.
    async tierBuckets(portalId, q) {
      const thresholds = sql`${`{${q.thresholds.map((t) => String(t)).join(',')}}`}::numeric[]`;
      const v =
        q.basis === 'won_count'
          ? sql`v AS (SELECT member_id, won_count AS value FROM member_won_scoped WHERE portal_id = ${portalId} AND scope = -1)`
          : sql`s AS (
              SELECT member_id,
                     CASE WHEN currency = ${q.currency} THEN amount::numeric WHEN currency IS NOT NULL AND fixed_count = won_count THEN fixed_converted END AS settled
              FROM member_won_scoped WHERE portal_id = ${portalId} AND scope = -1
            ),
            v AS (
              SELECT member_id, settled AS value FROM s WHERE settled IS NOT NULL
              UNION ALL
              SELECT d.client_member_id, coalesce(sum(coalesce(${converted(q.currency, 'd', 'r')}, 0)), 0)
              FROM deals d LEFT JOIN rates r ON r.currency = d.currency
              WHERE d.portal_id = ${portalId} AND d.won AND NOT d.deleted AND d.client_member_id IN (SELECT member_id FROM s WHERE settled IS NULL)
              GROUP BY d.client_member_id
            )`;
      const rows = rowsOf<{ bucket: Num; n: Num }>(
        await db.execute(sql`
          WITH ${ratesCte(q.rates)}, ${v}
          SELECT width_bucket(value::numeric, ${thresholds}) AS bucket, count(*) AS n FROM v GROUP BY 1
          UNION ALL
          SELECT width_bucket(0::numeric, ${thresholds}), (SELECT count(*) FROM members WHERE portal_id = ${portalId}) - (SELECT count(*) FROM v)`),
      );
      const result = new Map<number, number>();
      for (const r of rows) result.set(n(r.bucket), (result.get(n(r.bucket)) ?? 0) + n(r.n));
      return result;
    },
  };
}
