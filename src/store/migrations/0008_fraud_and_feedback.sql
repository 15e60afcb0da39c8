-- Admin override of a rejected referral (issue 9): who, when and why are kept on the row; the
-- original reject_reason stays, so an overridden referral still shows why it was refused.
ALTER TABLE "referrals" ADD COLUMN "overridden_by" integer;--> statement-breakpoint
ALTER TABLE "referrals" ADD COLUMN "overridden_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "referrals" ADD COLUMN "override_comment" text;--> statement-breakpoint
ALTER TABLE "referrals" DROP CONSTRAINT "referrals_reason_check";--> statement-breakpoint
ALTER TABLE "referrals" ADD CONSTRAINT "referrals_reason_check" CHECK ((status = 'rejected' AND reject_reason IS NOT NULL) OR (status = 'active' AND (reject_reason IS NULL OR overridden_at IS NOT NULL)));--> statement-breakpoint
CREATE INDEX "referrals_status_idx" ON "referrals" USING btree ("portal_id","status","id");--> statement-breakpoint
-- Feedback in the CRM (timeline comments, notifications): one row per message, unique per key,
-- so a message is recorded once whatever the number of events, runs or retries, and sent once.
CREATE TABLE "feedback_messages" (
	"portal_id" integer NOT NULL,
	"id" bigserial NOT NULL,
	"key" text NOT NULL,
	"target" text NOT NULL,
	"entity" text,
	"entity_id" integer,
	"user_id" integer,
	"text" text NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone NOT NULL,
	"sent_at" timestamp with time zone,
	CONSTRAINT "feedback_messages_pk" PRIMARY KEY("portal_id","id"),
	CONSTRAINT "feedback_messages_target_check" CHECK ((target = 'timeline' AND entity IN ('deal', 'contact', 'lead') AND entity_id IS NOT NULL) OR (target = 'notify' AND user_id IS NOT NULL)),
	CONSTRAINT "feedback_messages_status_check" CHECK (status IN ('queued', 'sent', 'dead'))
);--> statement-breakpoint
ALTER TABLE "feedback_messages" ADD CONSTRAINT "feedback_messages_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "feedback_messages_key_uq" ON "feedback_messages" USING btree ("portal_id","key");--> statement-breakpoint
CREATE INDEX "feedback_messages_queued_idx" ON "feedback_messages" USING btree ("portal_id","id") WHERE status = 'queued';
