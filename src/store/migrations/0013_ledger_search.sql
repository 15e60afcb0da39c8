-- The admin's ledger search (issue 12, GET /api/ledger): newest first is (created_at, id)
-- descending, so a period, a reason or a kind is an index range read in page order, whatever the
-- period's age. Measured on PostgreSQL 15 with 1 000 000 entries / 100 000 members: an old week
-- went from 1.1 s (a backward walk of the primary key discarding 870 000 rows) to 0.2 ms; a rare
-- reason with an old month from 0.9 s to 0.4 ms. Person and deal filters use the member and deal
-- indexes of 0000. (0010's covering (portal_id, created_at) index is ledger_entries_analytics_created_idx;
-- tests/unit/store/migration-names.test.ts keeps every index name unique across migrations.)
CREATE INDEX "ledger_entries_created_id_idx" ON "ledger_entries" USING btree ("portal_id","created_at","id");--> statement-breakpoint
CREATE INDEX "ledger_entries_reason_created_idx" ON "ledger_entries" USING btree ("portal_id","reason","created_at","id");--> statement-breakpoint
CREATE INDEX "ledger_entries_kind_created_idx" ON "ledger_entries" USING btree ("portal_id","kind","created_at","id");
