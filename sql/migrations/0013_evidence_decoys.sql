-- What a duress session was told about its uploads (DESIGN §5: a duress login "looks normal,
-- shows nothing real"). Its tus creations and PATCHes store nothing, but its HEAD and its next
-- PATCH must answer as a real session's would: with the offset it reached, on whichever server
-- process or replica the request lands, and after a restart. Until now that memory was per
-- process, so a coerced phone talking to a second replica got a 404 a real phone would not.
--
-- Lengths and offsets only, never bytes. Rows are visible to nobody but the same account's
-- duress sessions (an investigator learns of the duress from the alarm and the audit log, not
-- from here), and the evidence sweeper removes the expired ones.

CREATE TABLE evidence_decoys (
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    attachment_id uuid NOT NULL,
    upload_length bigint NOT NULL CHECK (upload_length > 0),
    upload_offset bigint NOT NULL CHECK (upload_offset >= 0 AND upload_offset <= upload_length),
    -- As for a real upload: an unfinished decoy expires (and is swept); a finished one does not.
    expires_at    timestamptz,
    touched_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (account_id, attachment_id),
    CHECK ((upload_offset = upload_length) = (expires_at IS NULL))
);
CREATE INDEX evidence_decoys_expiry_idx ON evidence_decoys (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX evidence_decoys_recent_idx ON evidence_decoys (account_id, touched_at DESC);

GRANT SELECT, INSERT, DELETE ON evidence_decoys TO tipline_app;
GRANT UPDATE (upload_length, upload_offset, expires_at, touched_at) ON evidence_decoys
    TO tipline_app;

ALTER TABLE evidence_decoys ENABLE ROW LEVEL SECURITY;
ALTER TABLE evidence_decoys FORCE ROW LEVEL SECURITY;

CREATE POLICY evidence_decoys_own ON evidence_decoys
    USING (current_is_duress() AND account_id = current_account_id())
    WITH CHECK (current_is_duress() AND account_id = current_account_id());
-- A DELETE that filters on columns needs the rows to be readable too.
CREATE POLICY evidence_decoys_sweep_read ON evidence_decoys FOR SELECT
    USING (current_app_role() = 'evidence_sweeper' AND expires_at <= now());
CREATE POLICY evidence_decoys_sweep ON evidence_decoys FOR DELETE
    USING (current_app_role() = 'evidence_sweeper' AND expires_at <= now());
