-- Analytics (SPEC 8, issue 12). `seen_at`: when Sarafan first recorded a deal (the funnel's
-- "referred deals in the period"); later upserts keep it. Rows from before this migration get
-- their last update, the best moment Sarafan still knows.
ALTER TABLE "deals" ADD COLUMN "seen_at" timestamp with time zone;
--> statement-breakpoint
UPDATE "deals" SET "seen_at" = "updated_at";
--> statement-breakpoint
ALTER TABLE "deals" ALTER COLUMN "seen_at" SET NOT NULL;
--> statement-breakpoint
-- Referred deals by when they were first seen and first won: the funnel, revenue, top referrers.
CREATE INDEX "deals_referred_seen_idx" ON "deals" USING btree ("portal_id","seen_at") WHERE referral_id IS NOT NULL;
--> statement-breakpoint
CREATE INDEX "deals_referred_won_idx" ON "deals" USING btree ("portal_id","first_won_at") INCLUDE ("category_id","amount","currency","fx_currency","fx_rate","referral_id") WHERE referral_id IS NOT NULL AND won AND NOT deleted;
--> statement-breakpoint
-- Reward cost by period: an index-only scan over the entries of the period (1M entries, SPEC 11).
CREATE INDEX "ledger_entries_analytics_created_idx" ON "ledger_entries" USING btree ("portal_id","created_at") INCLUDE ("reason","amount","deal_id");
--> statement-breakpoint
-- Liability: available and pending split at `now` without reading the heap.
CREATE INDEX "ledger_entries_liability_idx" ON "ledger_entries" USING btree ("portal_id","available_at") INCLUDE ("amount");
--> statement-breakpoint
CREATE INDEX "referrals_created_idx" ON "referrals" USING btree ("portal_id","created_at") WHERE status = 'active';
