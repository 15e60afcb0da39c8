-- Tiers in analytics (SPEC 11: ≤ 300 ms on 100 000 members): each member's won deals summed per
-- currency, kept by the triggers below in the writer's statement, so the tier distribution reads
-- one row per member and currency instead of converting every won deal. What the member card
-- counts (member-summaries.ts: won and not deleted, converted with the rate fixed on the first win
-- when it is for the deal's currency, else today's rate, rounded per deal) is kept exact: amounts
-- in a currency are summed as they are (the program currency is chosen at read time), fixed-rate
-- deals also as their converted sum; only a member with a won deal in another currency and no
-- fixed rate is read from `deals` (today's rate is only known at read time).
CREATE TABLE "member_won" (
	"portal_id" integer NOT NULL,
	"member_id" bigint NOT NULL,
	"currency" text NOT NULL,
	"won_count" bigint NOT NULL,
	"amount" bigint NOT NULL,
	"fixed_count" bigint NOT NULL,
	"fixed_converted" numeric NOT NULL,
	CONSTRAINT "member_won_pk" PRIMARY KEY("portal_id","member_id","currency")
);
--> statement-breakpoint
-- Adds the signed won deals of a statement (jsonb rows: portal_id, member_id, currency, sign,
-- amount, fx_rate — fx_rate only when fixed for the deal's currency); rows reaching no deal go.
-- Keys are locked in one order so concurrent writers do not deadlock.
CREATE FUNCTION member_won_add(moves jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  WITH m AS (
    SELECT (x->>'portal_id')::integer AS portal_id, (x->>'member_id')::bigint AS member_id, x->>'currency' AS currency,
           (x->>'sign')::integer AS sign, (x->>'amount')::bigint AS amount, (x->>'fx_rate')::numeric AS fx_rate
    FROM jsonb_array_elements(moves) x
  )
  INSERT INTO member_won AS w (portal_id, member_id, currency, won_count, amount, fixed_count, fixed_converted)
  SELECT portal_id, member_id, currency, sum(sign), sum(sign * amount), coalesce(sum(sign) FILTER (WHERE fx_rate IS NOT NULL), 0),
         coalesce(sum(sign * round(amount * fx_rate)) FILTER (WHERE fx_rate IS NOT NULL), 0)
  FROM m GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (portal_id, member_id, currency) DO UPDATE SET
    won_count = w.won_count + excluded.won_count, amount = w.amount + excluded.amount,
    fixed_count = w.fixed_count + excluded.fixed_count, fixed_converted = w.fixed_converted + excluded.fixed_converted;
  DELETE FROM member_won w USING (SELECT DISTINCT (x->>'portal_id')::integer AS portal_id, (x->>'member_id')::bigint AS member_id, x->>'currency' AS currency FROM jsonb_array_elements(moves) x) k
  WHERE w.portal_id = k.portal_id AND w.member_id = k.member_id AND w.currency = k.currency AND w.won_count = 0;
END
$$;
--> statement-breakpoint
CREATE FUNCTION member_won_on_deals() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  moves jsonb;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT jsonb_agg(jsonb_build_object('portal_id', n.portal_id, 'member_id', n.client_member_id, 'currency', n.currency, 'sign', 1, 'amount', n.amount,
                     'fx_rate', CASE WHEN n.fx_currency = n.currency THEN n.fx_rate END)) INTO moves
    FROM changed_new n WHERE n.won AND NOT n.deleted AND n.client_member_id IS NOT NULL;
  ELSIF TG_OP = 'UPDATE' THEN
    -- Only deals whose counted part changed (most updates are stage moves of open deals).
    SELECT jsonb_agg(x.m) INTO moves FROM (
      SELECT jsonb_build_object('portal_id', o.portal_id, 'member_id', o.client_member_id, 'currency', o.currency, 'sign', -1, 'amount', o.amount,
             'fx_rate', CASE WHEN o.fx_currency = o.currency THEN o.fx_rate END) AS m
      FROM changed_old o JOIN changed_new n ON n.portal_id = o.portal_id AND n.deal_id = o.deal_id
      WHERE o.won AND NOT o.deleted AND o.client_member_id IS NOT NULL
        AND (n.won, n.deleted, n.client_member_id, n.currency, n.amount, n.fx_currency, n.fx_rate) IS DISTINCT FROM (o.won, o.deleted, o.client_member_id, o.currency, o.amount, o.fx_currency, o.fx_rate)
      UNION ALL
      SELECT jsonb_build_object('portal_id', n.portal_id, 'member_id', n.client_member_id, 'currency', n.currency, 'sign', 1, 'amount', n.amount,
             'fx_rate', CASE WHEN n.fx_currency = n.currency THEN n.fx_rate END)
      FROM changed_old o JOIN changed_new n ON n.portal_id = o.portal_id AND n.deal_id = o.deal_id
      WHERE n.won AND NOT n.deleted AND n.client_member_id IS NOT NULL
        AND (n.won, n.deleted, n.client_member_id, n.currency, n.amount, n.fx_currency, n.fx_rate) IS DISTINCT FROM (o.won, o.deleted, o.client_member_id, o.currency, o.amount, o.fx_currency, o.fx_rate)
    ) x;
  ELSE
    SELECT jsonb_agg(jsonb_build_object('portal_id', o.portal_id, 'member_id', o.client_member_id, 'currency', o.currency, 'sign', -1, 'amount', o.amount,
                     'fx_rate', CASE WHEN o.fx_currency = o.currency THEN o.fx_rate END)) INTO moves
    FROM changed_old o WHERE o.won AND NOT o.deleted AND o.client_member_id IS NOT NULL;
  END IF;
  IF moves IS NOT NULL THEN PERFORM member_won_add(moves); END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER member_won_deals_insert AFTER INSERT ON deals
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION member_won_on_deals();
--> statement-breakpoint
CREATE TRIGGER member_won_deals_update AFTER UPDATE ON deals
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION member_won_on_deals();
--> statement-breakpoint
CREATE TRIGGER member_won_deals_delete AFTER DELETE ON deals
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION member_won_on_deals();
--> statement-breakpoint
-- Backfill: the deals written before this migration.
INSERT INTO member_won (portal_id, member_id, currency, won_count, amount, fixed_count, fixed_converted)
SELECT portal_id, client_member_id, currency, count(*), sum(amount),
       count(*) FILTER (WHERE fx_currency = currency AND fx_rate IS NOT NULL),
       coalesce(sum(round(amount * fx_rate::numeric)) FILTER (WHERE fx_currency = currency AND fx_rate IS NOT NULL), 0)
FROM deals WHERE won AND NOT deleted AND client_member_id IS NOT NULL
GROUP BY 1, 2, 3;
