-- Fewer indexes for every ledger write to maintain (issue 8: crediting CPU per deal). Each ledger
-- INSERT updated 12 indexes; two pairs said the same thing:
--   * ledger_entries_available_idx (portal_id, available_at) is a prefix of 0010's
--     ledger_entries_liability_idx (portal_id, available_at) INCLUDE (amount), which serves hold
--     maturation's window as well;
--   * 0010's ledger_entries_analytics_created_idx (portal_id, created_at) INCLUDE (reason, amount,
--     deal_id) and 0013's ledger_entries_created_id_idx (portal_id, created_at, id) become one:
--     the ledger search's (created_at, id) pages and reward cost's index-only edges both read it.
DROP INDEX IF EXISTS "ledger_entries_available_idx";
--> statement-breakpoint
DROP INDEX IF EXISTS "ledger_entries_analytics_created_idx";
--> statement-breakpoint
DROP INDEX IF EXISTS "ledger_entries_created_id_idx";
--> statement-breakpoint
CREATE INDEX "ledger_entries_created_cover_idx" ON "ledger_entries" USING btree ("portal_id","created_at","id") INCLUDE ("reason","amount","deal_id");
