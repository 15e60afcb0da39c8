-- Analytics summaries (SPEC 11: every dashboard query <= 300 ms on 1 000 000 ledger entries).
-- `ledger_daily` holds the signed sum and count of a portal's ledger entries per UTC day of
-- `created_at`, reason and the pipeline (category) of the entry's deal as it is now; -1 = no deal
-- row (coupons, promo codes, adjustments, or a deal Sarafan has not stored). Reward cost sums its
-- whole days instead of reading every entry of the period; liability's total is the sum of all
-- rows. Triggers keep it in the same transaction as every write it summarizes, whoever writes:
--   * ledger INSERT adds, ledger DELETE (the uninstall purge) subtracts — the ledger is
--     append-only otherwise (0001), so those are the only changes of an entry;
--   * a deal stored after its entries, a deal moved to another pipeline, and a deleted deal row
--     move the deal's entries between category buckets.
-- Statement-level triggers with transition tables: one aggregate per statement, not per row.
CREATE TABLE "ledger_daily" (
	"portal_id" integer NOT NULL,
	"day" date NOT NULL,
	"reason" text NOT NULL,
	"category_id" integer NOT NULL,
	"amount" bigint NOT NULL,
	"entries" bigint NOT NULL,
	CONSTRAINT "ledger_daily_pk" PRIMARY KEY("portal_id","day","reason","category_id")
);
--> statement-breakpoint
ALTER TABLE "ledger_daily" ADD CONSTRAINT "ledger_daily_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
-- Adds `amount`/`entries` per key; a key whose entries drop to none is removed.
CREATE FUNCTION ledger_daily_apply(p_rows jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ledger_daily AS s (portal_id, day, reason, category_id, amount, entries)
  SELECT (r->>'portal_id')::integer, (r->>'day')::date, r->>'reason', (r->>'category_id')::integer,
         (r->>'amount')::bigint, (r->>'entries')::bigint
  FROM jsonb_array_elements(p_rows) r
  -- One lock order for every writer, so concurrent appends wait for each other instead of deadlocking.
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (portal_id, day, reason, category_id)
  DO UPDATE SET amount = s.amount + excluded.amount, entries = s.entries + excluded.entries;
  DELETE FROM ledger_daily s
  USING jsonb_array_elements(p_rows) r
  WHERE s.portal_id = (r->>'portal_id')::integer AND s.day = (r->>'day')::date AND s.reason = r->>'reason'
    AND s.category_id = (r->>'category_id')::integer AND s.entries = 0;
END
$$;
--> statement-breakpoint
CREATE FUNCTION ledger_daily_on_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  sign integer := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
  delta jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT jsonb_agg(to_jsonb(g)) INTO delta FROM (
      SELECT e.portal_id, (e.created_at AT TIME ZONE 'UTC')::date AS day, e.reason, coalesce(d.category_id, -1) AS category_id,
             sum(e.amount) AS amount, count(*) AS entries
      FROM changed_new e LEFT JOIN deals d ON d.portal_id = e.portal_id AND d.deal_id = e.deal_id
      GROUP BY 1, 2, 3, 4) g;
  ELSE
    SELECT jsonb_agg(to_jsonb(g)) INTO delta FROM (
      SELECT e.portal_id, (e.created_at AT TIME ZONE 'UTC')::date AS day, e.reason, coalesce(d.category_id, -1) AS category_id,
             -sum(e.amount) AS amount, -count(*) AS entries
      FROM changed_old e LEFT JOIN deals d ON d.portal_id = e.portal_id AND d.deal_id = e.deal_id
      GROUP BY 1, 2, 3, 4) g;
  END IF;
  IF delta IS NOT NULL THEN PERFORM ledger_daily_apply(delta); END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER ledger_daily_ledger_insert AFTER INSERT ON ledger_entries
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION ledger_daily_on_ledger();
--> statement-breakpoint
CREATE TRIGGER ledger_daily_ledger_delete AFTER DELETE ON ledger_entries
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION ledger_daily_on_ledger();
--> statement-breakpoint
-- Moves the entries of the deals in `p_moves` ({portal_id, deal_id, from, to}) between buckets.
CREATE FUNCTION ledger_daily_move(p_moves jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  delta jsonb;
BEGIN
  SELECT jsonb_agg(to_jsonb(g)) INTO delta FROM (
    SELECT e.portal_id, (e.created_at AT TIME ZONE 'UTC')::date AS day, e.reason, side.category_id,
           sum(side.sign * e.amount) AS amount, sum(side.sign) AS entries
    FROM jsonb_array_elements(p_moves) m
    JOIN ledger_entries e ON e.portal_id = (m->>'portal_id')::integer AND e.deal_id = (m->>'deal_id')::integer
    CROSS JOIN LATERAL (VALUES (-1, (m->>'from')::integer), (1, (m->>'to')::integer)) side(sign, category_id)
    WHERE (m->>'from')::integer <> (m->>'to')::integer
    GROUP BY 1, 2, 3, 4) g;
  IF delta IS NOT NULL THEN PERFORM ledger_daily_apply(delta); END IF;
END
$$;
--> statement-breakpoint
CREATE FUNCTION ledger_daily_on_deals() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  moves jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT jsonb_agg(jsonb_build_object('portal_id', n.portal_id, 'deal_id', n.deal_id, 'from', -1, 'to', n.category_id)) INTO moves
    FROM changed_new n;
  ELSIF TG_OP = 'UPDATE' THEN
    SELECT jsonb_agg(jsonb_build_object('portal_id', n.portal_id, 'deal_id', n.deal_id, 'from', o.category_id, 'to', n.category_id)) INTO moves
    FROM changed_old o JOIN changed_new n ON n.portal_id = o.portal_id AND n.deal_id = o.deal_id
    WHERE o.category_id <> n.category_id;
  ELSE
    SELECT jsonb_agg(jsonb_build_object('portal_id', o.portal_id, 'deal_id', o.deal_id, 'from', o.category_id, 'to', -1)) INTO moves
    FROM changed_old o;
  END IF;
  IF moves IS NOT NULL THEN PERFORM ledger_daily_move(moves); END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER ledger_daily_deals_insert AFTER INSERT ON deals
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION ledger_daily_on_deals();
--> statement-breakpoint
CREATE TRIGGER ledger_daily_deals_update AFTER UPDATE ON deals
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION ledger_daily_on_deals();
--> statement-breakpoint
CREATE TRIGGER ledger_daily_deals_delete AFTER DELETE ON deals
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION ledger_daily_on_deals();
--> statement-breakpoint
-- Backfill: the entries written before this migration.
INSERT INTO ledger_daily (portal_id, day, reason, category_id, amount, entries)
SELECT e.portal_id, (e.created_at AT TIME ZONE 'UTC')::date, e.reason, coalesce(d.category_id, -1), sum(e.amount), count(*)
FROM ledger_entries e LEFT JOIN deals d ON d.portal_id = e.portal_id AND d.deal_id = e.deal_id
GROUP BY 1, 2, 3, 4;
--> statement-breakpoint
-- What will expire of each member's bonus (liability's "expiring in 30 days"). The FIFO replay of
-- src/rules/expiry.ts decides how much of each lot is left when it expires; that depends on the
-- member's entries only, not on when it is asked, so it is computed once per change of the
-- member's ledger (by the hourly bonus.expire job, refresh-expiry-outlook.ts) and stored as the
-- amounts expiring per instant after `computed_at`. `ledger_version` is bumped by every ledger
-- write of the member (trigger below, in the writer's transaction; its row lock also orders a
-- refresh after a concurrent append); the outlook counts only while `outlook_version` equals it,
-- so a member with newer entries is replayed at read time from the ledger until the next refresh.
CREATE TABLE "expiry_outlook_members" (
	"portal_id" integer NOT NULL,
	"member_id" bigint NOT NULL,
	"ledger_version" bigint DEFAULT 1 NOT NULL,
	"outlook_version" bigint,
	"computed_at" timestamp with time zone,
	CONSTRAINT "expiry_outlook_members_pk" PRIMARY KEY("portal_id","member_id")
);
--> statement-breakpoint
-- Rows exist only while current: the trigger deletes a member's rows with the version bump.
CREATE TABLE "expiry_outlook" (
	"portal_id" integer NOT NULL,
	"member_id" bigint NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"amount" bigint NOT NULL,
	"computed_at" timestamp with time zone NOT NULL,
	CONSTRAINT "expiry_outlook_pk" PRIMARY KEY("portal_id","member_id","expires_at")
);
--> statement-breakpoint
-- A 30-day window is an index-only range: ~3 % of the lots on 1M entries.
CREATE INDEX "expiry_outlook_expires_idx" ON "expiry_outlook" USING btree ("portal_id","expires_at") INCLUDE ("amount","computed_at");
--> statement-breakpoint
-- The members with a credit expiring in a window (those replayed at read time are the ones
-- without a current outlook), read from the index alone.
CREATE INDEX "ledger_entries_expiring_idx" ON "ledger_entries" USING btree ("portal_id","expires_at") INCLUDE ("member_id") WHERE expires_at IS NOT NULL AND amount > 0;
--> statement-breakpoint
CREATE FUNCTION expiry_outlook_on_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO expiry_outlook_members AS s (portal_id, member_id)
    SELECT DISTINCT portal_id, member_id FROM changed_new ORDER BY 1, 2
    ON CONFLICT (portal_id, member_id) DO UPDATE SET ledger_version = s.ledger_version + 1;
    DELETE FROM expiry_outlook o USING (SELECT DISTINCT portal_id, member_id FROM changed_new) c
    WHERE o.portal_id = c.portal_id AND o.member_id = c.member_id;
  ELSE
    -- The uninstall purge: the members' outlook goes with their entries.
    DELETE FROM expiry_outlook o USING (SELECT DISTINCT portal_id, member_id FROM changed_old) c
    WHERE o.portal_id = c.portal_id AND o.member_id = c.member_id;
    DELETE FROM expiry_outlook_members o USING (SELECT DISTINCT portal_id, member_id FROM changed_old) c
    WHERE o.portal_id = c.portal_id AND o.member_id = c.member_id;
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER expiry_outlook_ledger_insert AFTER INSERT ON ledger_entries
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION expiry_outlook_on_ledger();
--> statement-breakpoint
CREATE TRIGGER expiry_outlook_ledger_delete AFTER DELETE ON ledger_entries
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION expiry_outlook_on_ledger();
