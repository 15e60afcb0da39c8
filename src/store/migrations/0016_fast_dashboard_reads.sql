-- The analytics endpoint as a whole within SPEC 11's 300 ms (issue 12): two reads that still
-- walked every client or every expiring credit.
--
-- 1. LTV of referred clients against the others, and the tier distribution, read one row per
--    member instead of grouping every member's rows per currency (0015) or converting every won
--    deal. member_won (0015) is replaced by member_won_scoped: one row per member and scope (a
--    pipeline, or -1 for all pipelines) with:
--      won_count        the won, not deleted deals counted;
--      currency         the one currency they are all in, or NULL once they were in more than one
--                       (a member stays "mixed" until the row counts no deal and goes);
--      amount, fixed_count, fixed_converted   their sum in that currency, and how many had a rate
--                       fixed on first win for it, converted at that rate (rounded per deal);
--      first_won_at, last_won_at   a lower bound of their earliest first win and an upper bound
--                       of their latest: widened when a deal is added, never narrowed when one
--                       leaves; a won deal without first_won_at counts as won at infinity.
--    A reader skips a member whose deals were all won at or after the period's end, takes a row as
--    it is when its deals are in the program currency, or all at a fixed rate, and all won before
--    the end; any other member (mixed, today's rate, or bounds around the end) is read from
--    `deals`, converting per deal. Loose bounds cost speed, never exactness.
DROP TABLE "member_won";
--> statement-breakpoint
CREATE TABLE "member_won_scoped" (
	"portal_id" integer NOT NULL,
	"member_id" bigint NOT NULL,
	"scope" integer NOT NULL,
	"won_count" bigint NOT NULL,
	"currency" text,
	"amount" bigint NOT NULL,
	"fixed_count" bigint NOT NULL,
	"fixed_converted" numeric NOT NULL,
	"first_won_at" timestamp with time zone NOT NULL,
	"last_won_at" timestamp with time zone NOT NULL,
	CONSTRAINT "member_won_scoped_pk" PRIMARY KEY("portal_id","scope","member_id")
);
--> statement-breakpoint
-- Adds the signed won deals of a statement (jsonb rows: portal_id, member_id, category_id,
-- currency, sign, amount, fx_rate — only when fixed for the deal's currency —, won_at) to their
-- pipeline's row and to the all-pipelines row; rows reaching no deal go. Keys are locked in one
-- order so concurrent writers do not deadlock.
CREATE OR REPLACE FUNCTION member_won_add(moves jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  WITH m AS (
    SELECT (x->>'portal_id')::integer AS portal_id, (x->>'member_id')::bigint AS member_id, (x->>'category_id')::integer AS category_id,
           x->>'currency' AS currency, (x->>'sign')::integer AS sign, (x->>'amount')::bigint AS amount, (x->>'fx_rate')::numeric AS fx_rate,
           (x->>'won_at')::timestamptz AS won_at
    FROM jsonb_array_elements(moves) x
  ),
  scoped AS (
    SELECT portal_id, member_id, category_id AS scope, currency, sign, amount, fx_rate, won_at FROM m
    UNION ALL
    SELECT portal_id, member_id, -1, currency, sign, amount, fx_rate, won_at FROM m
  )
  INSERT INTO member_won_scoped AS w (portal_id, member_id, scope, won_count, currency, amount, fixed_count, fixed_converted, first_won_at, last_won_at)
  SELECT portal_id, member_id, scope, sum(sign), CASE WHEN count(DISTINCT currency) = 1 THEN min(currency) END, sum(sign * amount),
         coalesce(sum(sign) FILTER (WHERE fx_rate IS NOT NULL), 0),
         coalesce(sum(sign * round(amount * fx_rate)) FILTER (WHERE fx_rate IS NOT NULL), 0),
         coalesce(min(won_at) FILTER (WHERE sign > 0), 'infinity'), coalesce(max(won_at) FILTER (WHERE sign > 0), '-infinity')
  FROM scoped GROUP BY 1, 2, 3 ORDER BY 1, 3, 2
  ON CONFLICT (portal_id, scope, member_id) DO UPDATE SET
    won_count = w.won_count + excluded.won_count,
    currency = CASE WHEN w.currency = excluded.currency THEN w.currency END,
    amount = w.amount + excluded.amount,
    fixed_count = w.fixed_count + excluded.fixed_count, fixed_converted = w.fixed_converted + excluded.fixed_converted,
    first_won_at = least(w.first_won_at, excluded.first_won_at), last_won_at = greatest(w.last_won_at, excluded.last_won_at);
  DELETE FROM member_won_scoped w USING (
    SELECT DISTINCT (x->>'portal_id')::integer AS portal_id, (x->>'member_id')::bigint AS member_id, s.scope
    FROM jsonb_array_elements(moves) x CROSS JOIN LATERAL (VALUES ((x->>'category_id')::integer), (-1)) s(scope)
  ) k
  WHERE w.portal_id = k.portal_id AND w.member_id = k.member_id AND w.scope = k.scope AND w.won_count = 0;
END
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION member_won_on_deals() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  moves jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT jsonb_agg(jsonb_build_object('portal_id', n.portal_id, 'member_id', n.client_member_id, 'category_id', n.category_id, 'currency', n.currency, 'sign', 1,
                     'amount', n.amount, 'fx_rate', CASE WHEN n.fx_currency = n.currency THEN n.fx_rate END, 'won_at', coalesce(n.first_won_at, 'infinity'))) INTO moves
    FROM changed_new n WHERE n.won AND NOT n.deleted AND n.client_member_id IS NOT NULL;
  ELSIF TG_OP = 'UPDATE' THEN
    -- Only deals whose counted part changed (most updates are stage moves of open deals).
    SELECT jsonb_agg(x.m) INTO moves FROM (
      SELECT jsonb_build_object('portal_id', o.portal_id, 'member_id', o.client_member_id, 'category_id', o.category_id, 'currency', o.currency, 'sign', -1,
             'amount', o.amount, 'fx_rate', CASE WHEN o.fx_currency = o.currency THEN o.fx_rate END, 'won_at', coalesce(o.first_won_at, 'infinity')) AS m
      FROM changed_old o JOIN changed_new n ON n.portal_id = o.portal_id AND n.deal_id = o.deal_id
      WHERE o.won AND NOT o.deleted AND o.client_member_id IS NOT NULL
        AND (n.won, n.deleted, n.client_member_id, n.category_id, n.currency, n.amount, n.fx_currency, n.fx_rate, n.first_won_at)
            IS DISTINCT FROM (o.won, o.deleted, o.client_member_id, o.category_id, o.currency, o.amount, o.fx_currency, o.fx_rate, o.first_won_at)
      UNION ALL
      SELECT jsonb_build_object('portal_id', n.portal_id, 'member_id', n.client_member_id, 'category_id', n.category_id, 'currency', n.currency, 'sign', 1,
             'amount', n.amount, 'fx_rate', CASE WHEN n.fx_currency = n.currency THEN n.fx_rate END, 'won_at', coalesce(n.first_won_at, 'infinity'))
      FROM changed_old o JOIN changed_new n ON n.portal_id = o.portal_id AND n.deal_id = o.deal_id
      WHERE n.won AND NOT n.deleted AND n.client_member_id IS NOT NULL
        AND (n.won, n.deleted, n.client_member_id, n.category_id, n.currency, n.amount, n.fx_currency, n.fx_rate, n.first_won_at)
            IS DISTINCT FROM (o.won, o.deleted, o.client_member_id, o.category_id, o.currency, o.amount, o.fx_currency, o.fx_rate, o.first_won_at)
    ) x;
  ELSE
    SELECT jsonb_agg(jsonb_build_object('portal_id', o.portal_id, 'member_id', o.client_member_id, 'category_id', o.category_id, 'currency', o.currency, 'sign', -1,
                     'amount', o.amount, 'fx_rate', CASE WHEN o.fx_currency = o.currency THEN o.fx_rate END, 'won_at', coalesce(o.first_won_at, 'infinity'))) INTO moves
    FROM changed_old o WHERE o.won AND NOT o.deleted AND o.client_member_id IS NOT NULL;
  END IF;
  IF moves IS NOT NULL THEN PERFORM member_won_add(moves); END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- Backfill: the deals written before this migration, per pipeline and for all pipelines.
INSERT INTO "member_won_scoped" (portal_id, member_id, scope, won_count, currency, amount, fixed_count, fixed_converted, first_won_at, last_won_at)
SELECT portal_id, client_member_id, coalesce(category_id, -1), count(*), CASE WHEN count(DISTINCT currency) = 1 THEN min(currency) END, sum(amount),
       count(*) FILTER (WHERE fx_currency = currency AND fx_rate IS NOT NULL),
       coalesce(sum(round(amount * fx_rate::numeric)) FILTER (WHERE fx_currency = currency AND fx_rate IS NOT NULL), 0),
       min(coalesce(first_won_at, 'infinity')), max(coalesce(first_won_at, 'infinity'))
FROM deals WHERE won AND NOT deleted AND client_member_id IS NOT NULL
GROUP BY GROUPING SETS ((portal_id, client_member_id, category_id), (portal_id, client_member_id));
--> statement-breakpoint
-- 2. What expires in 30 days replays, at read time, the members whose stored outlook is not
--    current. It found them by probing every expiring credit's member (~30 000 on 1 M entries,
--    ~130 ms); now the stale members are an index of their own, and every member with ledger
--    entries has an outlook row (the ledger trigger of 0014 adds one on each write; members
--    written only before 0014 get theirs here), so "no current outlook" = a row in that index
--    (or one computed after the reader's now, a clock moved back: read by computed_at).
INSERT INTO "expiry_outlook_members" (portal_id, member_id)
SELECT DISTINCT portal_id, member_id FROM ledger_entries ORDER BY 1, 2
ON CONFLICT (portal_id, member_id) DO NOTHING;
--> statement-breakpoint
CREATE INDEX "expiry_outlook_members_stale_idx" ON "expiry_outlook_members" USING btree ("portal_id","member_id") WHERE outlook_version IS DISTINCT FROM ledger_version;
--> statement-breakpoint
CREATE INDEX "expiry_outlook_members_computed_idx" ON "expiry_outlook_members" USING btree ("portal_id","computed_at");
