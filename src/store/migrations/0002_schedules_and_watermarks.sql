CREATE TABLE "schedule_ticks" (
	"name" text NOT NULL,
	"tick_at" timestamp with time zone NOT NULL,
	"claimed_at" timestamp with time zone NOT NULL,
	CONSTRAINT "schedule_ticks_pk" PRIMARY KEY("name","tick_at")
);
--> statement-breakpoint
CREATE TABLE "watermarks" (
	"portal_id" integer NOT NULL,
	"name" text NOT NULL,
	"mark" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "watermarks_pk" PRIMARY KEY("portal_id","name")
);
--> statement-breakpoint
ALTER TABLE "watermarks" ADD CONSTRAINT "watermarks_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "ledger_entries_available_idx" ON "ledger_entries" USING btree ("portal_id","available_at");