-- Promo-code campaigns (SPEC 5): a campaign is a batch of one-time codes worth a fixed bonus.
CREATE TABLE "promo_campaigns" (
	"portal_id" integer NOT NULL,
	"id" bigserial NOT NULL,
	"name" text NOT NULL,
	"value" bigint NOT NULL,
	"code_count" integer NOT NULL,
	"expires_at" timestamp with time zone,
	"created_by" integer,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "promo_campaigns_pk" PRIMARY KEY("portal_id","id"),
	CONSTRAINT "promo_campaigns_value_check" CHECK (value > 0),
	CONSTRAINT "promo_campaigns_count_check" CHECK (code_count > 0)
);
--> statement-breakpoint
-- One row per code, unique per portal (upper case: input is case-insensitive). A code is used
-- once, ever: activation is a conditional UPDATE of used_at from NULL.
CREATE TABLE "promo_codes" (
	"portal_id" integer NOT NULL,
	"code" text NOT NULL,
	"campaign_id" bigint NOT NULL,
	"used_by_member_id" bigint,
	"used_at" timestamp with time zone,
	CONSTRAINT "promo_codes_pk" PRIMARY KEY("portal_id","code"),
	CONSTRAINT "promo_codes_upper_check" CHECK (code = upper(code)),
	CONSTRAINT "promo_codes_used_check" CHECK ((used_by_member_id IS NULL) = (used_at IS NULL))
);
--> statement-breakpoint
ALTER TABLE "promo_campaigns" ADD CONSTRAINT "promo_campaigns_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promo_codes" ADD CONSTRAINT "promo_codes_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promo_codes" ADD CONSTRAINT "promo_codes_campaign_fk" FOREIGN KEY ("portal_id","campaign_id") REFERENCES "public"."promo_campaigns"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "promo_codes" ADD CONSTRAINT "promo_codes_member_fk" FOREIGN KEY ("portal_id","used_by_member_id") REFERENCES "public"."members"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "promo_codes_campaign_idx" ON "promo_codes" USING btree ("portal_id","campaign_id","code");--> statement-breakpoint
-- Bonus expiry (SPEC 5 expiry.days): the hourly job looks for credits whose expiry passed since its last run.
CREATE INDEX "ledger_entries_expires_idx" ON "ledger_entries" USING btree ("portal_id","expires_at") WHERE expires_at IS NOT NULL;
