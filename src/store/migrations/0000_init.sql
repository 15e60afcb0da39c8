CREATE TABLE "crm_projections" (
	"portal_id" integer NOT NULL,
	"entity" text NOT NULL,
	"entity_id" integer NOT NULL,
	"values" jsonb NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "crm_projections_pk" PRIMARY KEY("portal_id","entity","entity_id")
);
--> statement-breakpoint
CREATE TABLE "deals" (
	"portal_id" integer NOT NULL,
	"deal_id" integer NOT NULL,
	"client_member_id" bigint,
	"category_id" integer NOT NULL,
	"stage_id" text NOT NULL,
	"stage_semantic" text NOT NULL,
	"amount" bigint NOT NULL,
	"currency" text NOT NULL,
	"won" boolean NOT NULL,
	"deleted" boolean NOT NULL,
	"first_won_at" timestamp with time zone,
	"program_version" integer,
	"referral_id" bigint,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "deals_pk" PRIMARY KEY("portal_id","deal_id"),
	CONSTRAINT "deals_stage_semantic_check" CHECK (stage_semantic IN ('P', 'S', 'F'))
);
--> statement-breakpoint
CREATE TABLE "installations" (
	"id" serial PRIMARY KEY NOT NULL,
	"member_id" text NOT NULL,
	"domain" text NOT NULL,
	"client_endpoint" text NOT NULL,
	"server_endpoint" text NOT NULL,
	"status" text DEFAULT 'new' NOT NULL,
	"scope" text DEFAULT '' NOT NULL,
	"user_id" integer,
	"application_token_enc" text,
	"access_token_enc" text,
	"refresh_token_enc" text,
	"expires_at" timestamp with time zone,
	"registration" jsonb,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"installed_at" timestamp with time zone,
	"uninstalled_at" timestamp with time zone,
	CONSTRAINT "installations_member_id_uq" UNIQUE("member_id"),
	CONSTRAINT "installations_status_check" CHECK (status IN ('new', 'active', 'uninstalled'))
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"portal_id" integer NOT NULL,
	"kind" text NOT NULL,
	"key" text NOT NULL,
	"payload" jsonb NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"run_at" timestamp with time zone NOT NULL,
	"locked_by" text,
	"locked_at" timestamp with time zone,
	"last_error" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "jobs_status_check" CHECK (status IN ('queued', 'running', 'done', 'dead'))
);
--> statement-breakpoint
CREATE TABLE "ledger_entries" (
	"id" bigserial NOT NULL,
	"portal_id" integer NOT NULL,
	"member_id" bigint NOT NULL,
	"amount" bigint NOT NULL,
	"reason" text NOT NULL,
	"kind" text NOT NULL,
	"deal_id" integer,
	"level" integer DEFAULT 0 NOT NULL,
	"program_version" integer,
	"idempotency_key" text NOT NULL,
	"available_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone,
	"caused_by" text NOT NULL,
	"comment" text,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "ledger_entries_pk" PRIMARY KEY("portal_id","id"),
	CONSTRAINT "ledger_entries_kind_check" CHECK (kind IN ('credit', 'reversal', 'correction')),
	CONSTRAINT "ledger_entries_level_check" CHECK (level >= 0)
);
--> statement-breakpoint
CREATE TABLE "members" (
	"portal_id" integer NOT NULL,
	"id" bigserial NOT NULL,
	"contact_id" integer,
	"lead_id" integer,
	"code" text,
	"joined_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "members_pk" PRIMARY KEY("portal_id","id"),
	CONSTRAINT "members_entity_check" CHECK (contact_id IS NOT NULL OR lead_id IS NOT NULL)
);
--> statement-breakpoint
CREATE TABLE "program_versions" (
	"portal_id" integer NOT NULL,
	"version" integer NOT NULL,
	"document" jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"created_by" integer,
	CONSTRAINT "program_versions_pk" PRIMARY KEY("portal_id","version"),
	CONSTRAINT "program_versions_version_check" CHECK (version >= 1)
);
--> statement-breakpoint
CREATE TABLE "referral_codes" (
	"portal_id" integer NOT NULL,
	"code" text NOT NULL,
	"member_id" bigint NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "referral_codes_pk" PRIMARY KEY("portal_id","code"),
	CONSTRAINT "referral_codes_upper_check" CHECK (code = upper(code))
);
--> statement-breakpoint
CREATE TABLE "referrals" (
	"portal_id" integer NOT NULL,
	"id" bigserial NOT NULL,
	"referee_member_id" bigint NOT NULL,
	"referrer_member_id" bigint,
	"code" text,
	"source" text NOT NULL,
	"source_ref" text NOT NULL,
	"status" text NOT NULL,
	"reject_reason" text,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "referrals_pk" PRIMARY KEY("portal_id","id"),
	CONSTRAINT "referrals_status_check" CHECK (status IN ('active', 'rejected')),
	CONSTRAINT "referrals_reason_check" CHECK ((status = 'rejected') = (reject_reason IS NOT NULL))
);
--> statement-breakpoint
ALTER TABLE "crm_projections" ADD CONSTRAINT "crm_projections_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deals" ADD CONSTRAINT "deals_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deals" ADD CONSTRAINT "deals_client_fk" FOREIGN KEY ("portal_id","client_member_id") REFERENCES "public"."members"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "deals" ADD CONSTRAINT "deals_referral_fk" FOREIGN KEY ("portal_id","referral_id") REFERENCES "public"."referrals"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_member_fk" FOREIGN KEY ("portal_id","member_id") REFERENCES "public"."members"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "members" ADD CONSTRAINT "members_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "program_versions" ADD CONSTRAINT "program_versions_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "referral_codes" ADD CONSTRAINT "referral_codes_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "referral_codes" ADD CONSTRAINT "referral_codes_member_fk" FOREIGN KEY ("portal_id","member_id") REFERENCES "public"."members"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "referrals" ADD CONSTRAINT "referrals_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "referrals" ADD CONSTRAINT "referrals_referee_fk" FOREIGN KEY ("portal_id","referee_member_id") REFERENCES "public"."members"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "referrals" ADD CONSTRAINT "referrals_referrer_fk" FOREIGN KEY ("portal_id","referrer_member_id") REFERENCES "public"."members"("portal_id","id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "deals_client_idx" ON "deals" USING btree ("portal_id","client_member_id");--> statement-breakpoint
CREATE INDEX "deals_referral_idx" ON "deals" USING btree ("portal_id","referral_id");--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_queued_key_uq" ON "jobs" USING btree ("portal_id","kind","key") WHERE status = 'queued';--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_running_key_uq" ON "jobs" USING btree ("portal_id","kind","key") WHERE status = 'running';--> statement-breakpoint
CREATE INDEX "jobs_claim_idx" ON "jobs" USING btree ("status","run_at");--> statement-breakpoint
CREATE UNIQUE INDEX "ledger_entries_idempotency_uq" ON "ledger_entries" USING btree ("portal_id","idempotency_key");--> statement-breakpoint
CREATE INDEX "ledger_entries_member_idx" ON "ledger_entries" USING btree ("portal_id","member_id","available_at");--> statement-breakpoint
CREATE INDEX "ledger_entries_deal_idx" ON "ledger_entries" USING btree ("portal_id","deal_id");--> statement-breakpoint
CREATE UNIQUE INDEX "members_contact_uq" ON "members" USING btree ("portal_id","contact_id") WHERE contact_id IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "members_lead_uq" ON "members" USING btree ("portal_id","lead_id") WHERE lead_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX "referral_codes_member_idx" ON "referral_codes" USING btree ("portal_id","member_id");--> statement-breakpoint
CREATE UNIQUE INDEX "referrals_active_referee_uq" ON "referrals" USING btree ("portal_id","referee_member_id") WHERE status = 'active';--> statement-breakpoint
CREATE UNIQUE INDEX "referrals_rejected_uq" ON "referrals" USING btree ("portal_id","referee_member_id",coalesce(referrer_member_id, 0),"reject_reason") WHERE status = 'rejected';--> statement-breakpoint
CREATE INDEX "referrals_referee_idx" ON "referrals" USING btree ("portal_id","referee_member_id");--> statement-breakpoint
CREATE INDEX "referrals_referrer_idx" ON "referrals" USING btree ("portal_id","referrer_member_id");