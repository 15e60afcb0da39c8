CREATE TABLE "history_deals" (
	"portal_id" integer NOT NULL,
	"deal_id" integer NOT NULL,
	"contact_id" integer,
	"lead_id" integer,
	"category_id" integer NOT NULL,
	"amount" bigint NOT NULL,
	"currency" text NOT NULL,
	"won_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone,
	CONSTRAINT "history_deals_pk" PRIMARY KEY("portal_id","deal_id")
);
--> statement-breakpoint
ALTER TABLE "history_deals" ADD CONSTRAINT "history_deals_portal_id_installations_id_fk" FOREIGN KEY ("portal_id") REFERENCES "public"."installations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "history_deals_contact_idx" ON "history_deals" USING btree ("portal_id","contact_id","won_at") WHERE contact_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX "history_deals_lead_idx" ON "history_deals" USING btree ("portal_id","lead_id","won_at") WHERE lead_id IS NOT NULL;