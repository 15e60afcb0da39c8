-- The funnel's link clicks (SPEC 11, issue 12): 200 000 clicks a year were counted one by one for
-- every dashboard view (30-55 ms of the endpoint's 300 ms). `clicks_daily` holds a portal's clicks
-- per UTC day of `clicked_at`, kept by statement triggers in the writer's transaction (clicks are
-- only inserted, and deleted by the uninstall purge); the whole days of a period are read from it,
-- the partial days at its edges from the clicks themselves, as reward cost does with ledger_daily.
CREATE TABLE "clicks_daily" (
	"portal_id" integer NOT NULL,
	"day" date NOT NULL,
	"clicks" bigint NOT NULL,
	CONSTRAINT "clicks_daily_pk" PRIMARY KEY("portal_id","day")
);
--> statement-breakpoint
CREATE FUNCTION clicks_daily_on_clicks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO clicks_daily AS s (portal_id, day, clicks)
    SELECT portal_id, (clicked_at AT TIME ZONE 'UTC')::date, count(*) FROM changed_new GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (portal_id, day) DO UPDATE SET clicks = s.clicks + excluded.clicks;
  ELSE
    UPDATE clicks_daily s SET clicks = s.clicks - c.n
    FROM (SELECT portal_id, (clicked_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM changed_old GROUP BY 1, 2) c
    WHERE s.portal_id = c.portal_id AND s.day = c.day;
    DELETE FROM clicks_daily s USING (SELECT DISTINCT portal_id FROM changed_old) c WHERE s.portal_id = c.portal_id AND s.clicks = 0;
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER clicks_daily_insert AFTER INSERT ON referral_clicks
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION clicks_daily_on_clicks();
--> statement-breakpoint
CREATE TRIGGER clicks_daily_delete AFTER DELETE ON referral_clicks
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION clicks_daily_on_clicks();
--> statement-breakpoint
INSERT INTO clicks_daily (portal_id, day, clicks)
SELECT portal_id, (clicked_at AT TIME ZONE 'UTC')::date, count(*) FROM referral_clicks GROUP BY 1, 2;
