-- Referral links (SPEC 3 `GET /r/:portal/:code`): a public id of each installation goes in the
-- link instead of its member_id, and a per-installation salt hashes visitors' addresses. Both
-- defaults are volatile, so PostgreSQL evaluates them per row: existing installations get their
-- own values here, new ones on insert.
ALTER TABLE "installations" ADD COLUMN "public_id" text DEFAULT left(md5(gen_random_uuid()::text), 20) NOT NULL;--> statement-breakpoint
ALTER TABLE "installations" ADD COLUMN "link_salt" text DEFAULT md5(gen_random_uuid()::text) NOT NULL;--> statement-breakpoint
ALTER TABLE "installations" ADD COLUMN "lang" text;--> statement-breakpoint
CREATE UNIQUE INDEX "installations_public_id_uq" ON "installations" USING btree ("public_id");--> statement-breakpoint
CREATE TABLE "referral_clicks" (
	"portal_id" integer NOT NULL,
	"id" bigserial NOT NULL,
	"member_id" bigint NOT NULL,
	"code" text NOT NULL,
	"clicked_at" timestamp with time zone NOT NULL,
	"visitor_hash" text NOT NULL,
	"agent_class" text NOT NULL,
	CONSTRAINT "referral_clicks_pk" PRIMARY KEY("portal_id","id"),
	CONSTRAINT "referral_clicks_agent_class_check" CHECK (agent_class IN ('desktop', 'mobile', 'bot', 'other'))
);
--> statement-breakpoint
ALTER TABLE "referral_clicks" ADD CONSTRAINT "referral_clicks_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "referral_clicks" ADD CONSTRAINT "referral_clicks_member_fk" FOREIGN KEY ("portal_id","member_id") REFERENCES "public"."members"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "referral_clicks_time_idx" ON "referral_clicks" USING btree ("portal_id","clicked_at");--> statement-breakpoint
CREATE INDEX "referral_clicks_member_idx" ON "referral_clicks" USING btree ("portal_id","member_id","clicked_at");--> statement-breakpoint
-- Links already written into UF_CRM_SARAFAN_LINK carry the member_id: queue the re-projection of
-- every enrolled member of an active portal (crm.project jobs of 500 members), so the CRM shows
-- the new links without waiting for each person to change.
INSERT INTO "jobs" ("portal_id", "kind", "key", "payload", "status", "attempts", "run_at", "created_at", "updated_at")
SELECT m.portal_id, 'crm.project', 'relink:' || (m.rn / 500)::text,
       jsonb_build_object('members', jsonb_agg(m.id ORDER BY m.id), 'deals', '[]'::jsonb),
       'queued', 0, now(), now(), now()
FROM (
  SELECT mb.portal_id, mb.id, row_number() OVER (PARTITION BY mb.portal_id ORDER BY mb.id) - 1 AS rn
  FROM "members" mb JOIN "installations" i ON i.id = mb.portal_id
  WHERE i.status = 'active' AND mb.code IS NOT NULL
) m
GROUP BY m.portal_id, m.rn / 500;
