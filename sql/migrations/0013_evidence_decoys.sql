-- What a duress session was told about its uploads (DESIGN §5: a duress login "looks normal,
-- shows nothing real"). Its tus creations and PATCHes store nothing, but every later answer must
-- be the one a real session would get: HEAD with the offset it reached, 409 at a wrong offset or
-- for a retried creation that declares something else, 460 for a bad checksum, 429 past the
-- quotas, 404 once terminated or expired, on whichever server process or replica the request
-- lands and after a restart. Until now that memory was per process, so a coerced phone talking
-- to a second replica got a 404 a real phone would not.
--
-- Lengths, offsets and the declared digest only, never bytes. Rows are visible to nobody but the
-- same account's duress sessions (an investigator learns of the duress from the alarm and the
-- audit log, not from here), and to the evidence sweeper only once they have expired unfinished.
-- The statuses mirror `attachments` so one quota query serves both (0007_evidence.sql).

CREATE TABLE evidence_decoys (
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    attachment_id   uuid NOT NULL,
    upload_length   bigint NOT NULL CHECK (upload_length > 0),
    declared_sha256 text NOT NULL CHECK (declared_sha256 ~ '^[0-9a-f]{64}$'),
    upload_offset   bigint NOT NULL DEFAULT 0
                        CHECK (upload_offset >= 0 AND upload_offset <= upload_length),
    status          text NOT NULL DEFAULT 'uploading'
                        CHECK (status IN ('uploading', 'complete', 'deleted')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    touched_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (account_id, attachment_id),
    CHECK (status <> 'complete' OR upload_offset = upload_length)
);
CREATE INDEX evidence_decoys_expiry_idx ON evidence_decoys (expires_at)
    WHERE status = 'uploading';
CREATE INDEX evidence_decoys_recent_idx ON evidence_decoys (account_id, touched_at DESC);

GRANT SELECT, INSERT, DELETE ON evidence_decoys TO tipline_app;
GRANT UPDATE (upload_offset, status, expires_at, touched_at) ON evidence_decoys TO tipline_app;

ALTER TABLE evidence_decoys ENABLE ROW LEVEL SECURITY;
ALTER TABLE evidence_decoys FORCE ROW LEVEL SECURITY;

CREATE POLICY evidence_decoys_own ON evidence_decoys
    USING (current_is_duress() AND account_id = current_account_id())
    WITH CHECK (current_is_duress() AND account_id = current_account_id());
-- The sweeper retires expired unfinished decoys, as it retires real uploads (an updated row
-- must stay readable, hence 'deleted' here too).
CREATE POLICY evidence_decoys_sweep_read ON evidence_decoys FOR SELECT
    USING (current_app_role() = 'evidence_sweeper' AND status IN ('uploading', 'deleted')
           AND expires_at <= now());
CREATE POLICY evidence_decoys_sweep ON evidence_decoys FOR UPDATE
    USING (current_app_role() = 'evidence_sweeper' AND status = 'uploading'
           AND expires_at <= now())
    WITH CHECK (current_app_role() = 'evidence_sweeper' AND status = 'deleted');
