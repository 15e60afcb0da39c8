-- Program keys applied (SPEC 5.1): currency conversion, monthly referrer caps, the clamp
-- overspend policy and milestone coupons. Written by hand; appended columns only on existing tables.
-- Deals keep the rate fixed on first win, so a re-delivered event after the portal's rates
-- moved does not re-price a settled deal.
ALTER TABLE "deals" ADD COLUMN "fx_currency" text;--> statement-breakpoint
ALTER TABLE "deals" ADD COLUMN "fx_rate" text;--> statement-breakpoint
-- The conversion an entry was priced with (null when the deal was in the program currency).
ALTER TABLE "ledger_entries" ADD COLUMN "fx_currency" text;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD COLUMN "fx_rate" text;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD COLUMN "fx_amount" bigint;--> statement-breakpoint
-- What the clamp policy did not take back (a positive amount on a negative entry).
ALTER TABLE "ledger_entries" ADD COLUMN "shortfall" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
-- What the referrer's monthly cap held back from this entry's slot after it was written.
ALTER TABLE "ledger_entries" ADD COLUMN "capped" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_shortfall_check" CHECK (shortfall >= 0 AND capped >= 0);--> statement-breakpoint
CREATE TABLE "portal_settings" (
	"portal_id" integer NOT NULL,
	"utc_offset_minutes" integer NOT NULL,
	"currencies" jsonb NOT NULL,
	"read_at" timestamp with time zone NOT NULL,
	CONSTRAINT "portal_settings_pk" PRIMARY KEY("portal_id")
);
--> statement-breakpoint
ALTER TABLE "portal_settings" ADD CONSTRAINT "portal_settings_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE TABLE "coupons" (
	"portal_id" integer NOT NULL,
	"id" bigserial NOT NULL,
	"member_id" bigint NOT NULL,
	"milestone" integer NOT NULL,
	"code" text NOT NULL,
	"value" bigint NOT NULL,
	"status" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "coupons_pk" PRIMARY KEY("portal_id","id"),
	CONSTRAINT "coupons_status_check" CHECK (status IN ('issued', 'reversed')),
	CONSTRAINT "coupons_milestone_check" CHECK (milestone >= 1)
);
--> statement-breakpoint
ALTER TABLE "coupons" ADD CONSTRAINT "coupons_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "coupons" ADD CONSTRAINT "coupons_member_fk" FOREIGN KEY ("portal_id","member_id") REFERENCES "public"."members"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "coupons_code_uq" ON "coupons" USING btree ("portal_id","code");--> statement-breakpoint
CREATE UNIQUE INDEX "coupons_milestone_uq" ON "coupons" USING btree ("portal_id","member_id","milestone");
