-- Operations (issue 7): retention with legal hold (DESIGN §5, SEC-DATA-01).
--
-- Retention crypto-shreds: the server never held a content key, so deleting the ciphertext
-- (report bytes, stored evidence objects) destroys the content for good, while the metadata
-- that proves what existed and who handled it (digests, custody rows, the sealed audit chain)
-- stays. It runs in its own RLS context, 'retention', never the context of a person; the
-- policies below give that context exactly the rows it deletes and nothing it could read.

-- A legal hold exempts a lead (and the evidence of its reports) from retention, e.g. while a
-- case is before a court. A row per hold, so placing and releasing never rewrites the lead
-- (whose own trigger allows only workflow moves).
CREATE TABLE lead_holds (
    lead_id   uuid PRIMARY KEY REFERENCES leads (id),
    placed_by uuid REFERENCES accounts (id),
    placed_at timestamptz NOT NULL DEFAULT now()
);

-- When retention emptied a rejected report's ciphertext; the digest, signature and receipt
-- stay, so the report's existence and integrity record outlive its content.
ALTER TABLE reports ADD COLUMN ciphertext_shredded_at timestamptz;
ALTER TABLE reports ADD CONSTRAINT reports_shredded_is_empty
    CHECK (ciphertext_shredded_at IS NULL OR octet_length(ciphertext) = 0);
CREATE INDEX reports_retention_idx ON reports (updated_at)
    WHERE status = 'rejected' AND ciphertext_shredded_at IS NULL;
CREATE INDEX lead_reports_report_idx ON lead_reports (report_id);

-- Evidence cited by a report may now be retired (crypto-shredded) while it keeps the link to
-- its report, so the custody history still says whose evidence it was. 0007 allowed the link on
-- complete evidence only; found by its definition because the constraint has no explicit name.
DO $$
DECLARE
    found text;
BEGIN
    SELECT conname INTO found FROM pg_constraint
    WHERE conrelid = 'attachments'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) = 'CHECK (((report_id IS NULL) OR (status = ''complete''::text)))';
    IF found IS NOT NULL THEN
        EXECUTE format('ALTER TABLE attachments DROP CONSTRAINT %I', found);
    END IF;
END
$$;
ALTER TABLE attachments ADD CONSTRAINT attachments_cited_is_evidence
    CHECK (report_id IS NULL OR status IN ('complete', 'deleted'));

-- Only retention may empty a report's ciphertext, only a rejected one's, only once, and a
-- shredded report can never move back into the workflow (a lead must never cite nothing).
-- The column grant below is to the app role as a whole, so this is what confines it.
CREATE FUNCTION reports_guard_shred() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = tipline, pg_catalog
    AS $$
BEGIN
    IF NEW.ciphertext IS DISTINCT FROM OLD.ciphertext
       OR NEW.ciphertext_shredded_at IS DISTINCT FROM OLD.ciphertext_shredded_at THEN
        IF current_app_role() IS DISTINCT FROM 'retention'
           OR OLD.status <> 'rejected' OR NEW.status <> 'rejected'
           OR OLD.ciphertext_shredded_at IS NOT NULL
           OR NEW.ciphertext_shredded_at IS NULL
           OR octet_length(NEW.ciphertext) <> 0 THEN
            RAISE EXCEPTION 'report ciphertext is deleted only by retention'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    IF OLD.ciphertext_shredded_at IS NOT NULL AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'a shredded report stays rejected' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER reports_guard_shred BEFORE UPDATE ON reports
    FOR EACH ROW EXECUTE FUNCTION reports_guard_shred();

GRANT UPDATE (ciphertext, ciphertext_shredded_at) ON reports TO tipline_app;
GRANT SELECT, INSERT, DELETE ON lead_holds TO tipline_app;
-- Ended and expired sessions are deleted by retention (the app could only end them before).
GRANT DELETE ON sessions TO tipline_app;

ALTER TABLE lead_holds ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_holds FORCE ROW LEVEL SECURITY;

-- Holds: investigators (and the operator's CLI, in the retention context) place and release
-- them; retention reads them.
CREATE POLICY lead_holds_read ON lead_holds FOR SELECT
    USING (current_app_role() = 'retention'
           OR (current_app_role() = 'investigator' AND NOT current_is_duress()));
CREATE POLICY lead_holds_place ON lead_holds FOR INSERT
    WITH CHECK (current_app_role() = 'retention'
                OR (current_app_role() = 'investigator' AND NOT current_is_duress()
                    AND placed_by = current_account_id()));
CREATE POLICY lead_holds_release ON lead_holds FOR DELETE
    USING (current_app_role() = 'retention'
           OR (current_app_role() = 'investigator' AND NOT current_is_duress()));

-- What retention must see to decide: rejected reports, closed leads and what they cite.
CREATE POLICY reports_retention_read ON reports FOR SELECT
    USING (current_app_role() = 'retention' AND status = 'rejected');
CREATE POLICY reports_retention_shred ON reports FOR UPDATE
    USING (current_app_role() = 'retention' AND status = 'rejected'
           AND ciphertext_shredded_at IS NULL)
    WITH CHECK (current_app_role() = 'retention');
CREATE POLICY leads_retention_read ON leads FOR SELECT
    USING (current_app_role() = 'retention');
CREATE POLICY lead_reports_retention_read ON lead_reports FOR SELECT
    USING (current_app_role() = 'retention');
CREATE POLICY attachments_retention_read ON attachments FOR SELECT
    USING (current_app_role() = 'retention');
-- Retention retires only complete evidence (abandoned uploads are the evidence sweeper's).
CREATE POLICY attachments_retention_shred ON attachments FOR UPDATE
    USING (current_app_role() = 'retention' AND status = 'complete')
    WITH CHECK (current_app_role() = 'retention' AND status = 'deleted');

CREATE POLICY sessions_retention_read ON sessions FOR SELECT
    USING (current_app_role() = 'retention');
CREATE POLICY sessions_retention_sweep ON sessions FOR DELETE
    USING (current_app_role() = 'retention');
CREATE POLICY login_throttle_retention ON login_throttle
    USING (current_app_role() = 'retention') WITH CHECK (false);
