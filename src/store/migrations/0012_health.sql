-- Installation health (issue 12). When the portal's last CRM event arrived: one nullable column
-- the event route writes at most once a minute per portal (a log of events would cost the ingest
-- hot path a write per event, and the jobs table forgets: done jobs are purged, queued ones
-- coalesce). The dead-letter list reads a portal's dead jobs newest first; dead jobs are rare, so
-- the partial index costs the queue's writes nothing.
ALTER TABLE "installations" ADD COLUMN "last_event_at" timestamp with time zone;
--> statement-breakpoint
CREATE INDEX "jobs_dead_idx" ON "jobs" USING btree ("portal_id","updated_at") WHERE status = 'dead';
