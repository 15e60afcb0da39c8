-- The ledger is append-only (SPEC 5): corrections are new entries, never edits. Deleting stays
-- possible for the clean uninstall purge.
CREATE FUNCTION ledger_entries_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger_entries is append-only: UPDATE refused' USING ERRCODE = 'restrict_violation';
END
$$;
--> statement-breakpoint
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_entries_refuse_update();
