-- Robot calls (issue 10): one row per (portal, event_token) so a repeated call is one call, and
-- the answer sent with bizproc.event.send is kept to be reported again. Keyed by the token's
-- SHA-256 hex digest (what job keys and ledger causes carry, so logs never show the token); the
-- token itself is kept only to answer with.
CREATE TABLE "robot_calls" (
	"portal_id" integer NOT NULL,
	"token_hash" text NOT NULL,
	"event_token" text NOT NULL,
	"code" text NOT NULL,
	"document_id" text NOT NULL,
	"properties" jsonb NOT NULL,
	"user_id" integer,
	"answer" jsonb,
	"created_at" timestamp with time zone NOT NULL,
	"answered_at" timestamp with time zone,
	CONSTRAINT "robot_calls_pk" PRIMARY KEY("portal_id","token_hash")
);
--> statement-breakpoint
ALTER TABLE "robot_calls" ADD CONSTRAINT "robot_calls_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;
