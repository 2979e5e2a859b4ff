-- Evidence (issue 6): resumable uploads of age ciphertext (tus 1.0.0) and each attachment's
-- chain of custody. The server stores ciphertext it cannot read, under a key it chose, in a
-- storage backend (local folder or S3); this table holds the upload's progress and the digest
-- the completed bytes were checked against. No filename, MIME type or other plaintext metadata
-- ever reaches the server.

CREATE TABLE attachments (
    -- Chosen by the client (tus Upload-Metadata `attachment_id`), so a report can cite it and a
    -- retried creation is recognised as the same upload.
    id                uuid PRIMARY KEY,
    owner_id          uuid NOT NULL REFERENCES accounts (id),
    owner_role        text NOT NULL CHECK (owner_role IN ('operative', 'investigator')),
    device_id         uuid NOT NULL REFERENCES devices (id),
    -- Server-generated object name (SEC-FILE-01): never derived from anything the client sent.
    storage_key       text NOT NULL UNIQUE CHECK (storage_key ~ '^[0-9a-f]{32}$'),
    -- The backend's resumable state (S3: multipart upload id, parts, tail size), never content.
    storage_state     text NOT NULL DEFAULT '' CHECK (octet_length(storage_state) <= 65536),
    -- The declared age ciphertext length (tus Upload-Length) and digest; bytes beyond the
    -- length are refused, and the completed bytes must hash to the digest.
    upload_length     bigint NOT NULL CHECK (upload_length > 0),
    declared_sha256   text NOT NULL CHECK (declared_sha256 ~ '^[0-9a-f]{64}$'),
    upload_offset     bigint NOT NULL DEFAULT 0,
    -- The SHA-256 computed by the server over the stored bytes, set once on completion.
    ciphertext_sha256 text CHECK (ciphertext_sha256 ~ '^[0-9a-f]{64}$'),
    -- 'finalizing': every byte is stored and recorded (offset = length, final storage state)
    -- but the object is not yet checked and made whole; whoever next holds the lease finishes it,
    -- so a crash between the storage steps and the database never strands the evidence.
    status            text NOT NULL DEFAULT 'uploading'
                          CHECK (status IN ('uploading', 'finalizing', 'complete', 'deleted')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- tus expiration extension: an upload idle past this is swept with its stored bytes.
    expires_at        timestamptz NOT NULL,
    completed_at      timestamptz,
    -- One PATCH at a time writes an upload, across every replica: a request claims the upload
    -- for a short, renewed lease instead of holding a pooled connection for minutes.
    lease_id          uuid,
    lease_until       timestamptz,
    -- The report that cited it, and the plaintext digest that report's signed message gives
    -- for it (set together by report intake, inside its transaction). The server never sees the
    -- plaintext; it keeps the digest so the investigator's client can rebuild the exact signed
    -- message and check it after decryption.
    report_id         uuid REFERENCES reports (id),
    plaintext_sha256  text CHECK (plaintext_sha256 ~ '^[0-9a-f]{64}$'),
    CHECK (upload_offset BETWEEN 0 AND upload_length),
    CHECK (status <> 'finalizing' OR upload_offset = upload_length),
    CHECK (status <> 'complete'
           OR (upload_offset = upload_length AND ciphertext_sha256 IS NOT NULL
               AND completed_at IS NOT NULL)),
    CHECK (report_id IS NULL OR status = 'complete'),
    CHECK ((report_id IS NULL) = (plaintext_sha256 IS NULL))
);
CREATE INDEX attachments_expiry_idx ON attachments (expires_at)
    WHERE status IN ('uploading', 'finalizing');
CREATE INDEX attachments_owner_idx ON attachments (owner_id, created_at);
CREATE INDEX attachments_report_idx ON attachments (report_id) WHERE report_id IS NOT NULL;

-- A completed attachment is evidence: its bytes' identity never changes again, and it is never
-- handed to another report (a court must be able to rely on the digest recorded at completion).
CREATE FUNCTION attachments_guard_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF OLD.status = 'complete' THEN
        IF NEW.upload_length <> OLD.upload_length OR NEW.upload_offset <> OLD.upload_offset
           OR NEW.ciphertext_sha256 IS DISTINCT FROM OLD.ciphertext_sha256
           OR NEW.declared_sha256 <> OLD.declared_sha256
           OR NEW.storage_key <> OLD.storage_key
           OR NEW.owner_id <> OLD.owner_id
           OR NEW.completed_at IS DISTINCT FROM OLD.completed_at
           OR (OLD.report_id IS NOT NULL AND NEW.report_id IS DISTINCT FROM OLD.report_id)
           OR (OLD.report_id IS NOT NULL
               AND NEW.plaintext_sha256 IS DISTINCT FROM OLD.plaintext_sha256)
           OR NEW.status NOT IN ('complete', 'deleted') THEN
            RAISE EXCEPTION 'a completed attachment is immutable'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    IF OLD.status = 'finalizing' AND NEW.status NOT IN ('finalizing', 'complete', 'deleted') THEN
        RAISE EXCEPTION 'a finalizing upload has all its bytes'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status = 'deleted' AND NEW.status <> 'deleted' THEN
        RAISE EXCEPTION 'a deleted attachment stays deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER attachments_guard_update BEFORE UPDATE ON attachments
    FOR EACH ROW EXECUTE FUNCTION attachments_guard_update();

-- The chain of custody: one row per event, each pointing at the audit event that records it,
-- so the sealed audit chain covers it (DESIGN §5). Append-only like the audit log.
CREATE TABLE attachment_custody (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attachment_id  uuid NOT NULL REFERENCES attachments (id),
    audit_event_id bigint NOT NULL UNIQUE REFERENCES audit_events (id),
    event          text NOT NULL
                       CHECK (event IN ('received', 'completed', 'downloaded', 'exported', 'deleted')),
    actor_id       uuid,
    actor_role     text CHECK (actor_role ~ '^[a-z_]{1,32}$'),
    occurred_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Byte range of a download (inclusive), or null for the whole object / other events.
    range_start    bigint CHECK (range_start >= 0),
    range_end      bigint CHECK (range_end >= range_start)
);
CREATE INDEX attachment_custody_attachment_idx ON attachment_custody (attachment_id, id);

CREATE TRIGGER attachment_custody_append_only BEFORE UPDATE OR DELETE ON attachment_custody
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER attachment_custody_no_truncate BEFORE TRUNCATE ON attachment_custody
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

GRANT SELECT, INSERT ON attachments TO tipline_app;
GRANT UPDATE (upload_offset, storage_state, ciphertext_sha256, status, expires_at, completed_at,
              lease_id, lease_until, report_id, plaintext_sha256) ON attachments TO tipline_app;
GRANT SELECT, INSERT ON attachment_custody TO tipline_app;

ALTER TABLE attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE attachments FORCE ROW LEVEL SECURITY;
ALTER TABLE attachment_custody ENABLE ROW LEVEL SECURITY;
ALTER TABLE attachment_custody FORCE ROW LEVEL SECURITY;

-- Investigators may read every attachment; an uploader only their own; a duress session none.
-- 'evidence_sweeper' is the context of the expiry sweeper, never of a person.
CREATE POLICY attachments_read ON attachments FOR SELECT
    USING (current_app_role() = 'evidence_sweeper'
           OR (NOT current_is_duress()
               AND (current_app_role() = 'investigator' OR owner_id = current_account_id())));
CREATE POLICY attachments_create ON attachments FOR INSERT
    WITH CHECK (NOT current_is_duress()
                AND current_app_role() IN ('operative', 'investigator')
                AND owner_id = current_account_id() AND owner_role = current_app_role());
-- Only the uploader moves an upload forward (and report intake, acting as that operative,
-- links it to the report); the sweeper may only retire abandoned ones.
CREATE POLICY attachments_progress ON attachments FOR UPDATE
    USING (NOT current_is_duress() AND owner_id = current_account_id())
    WITH CHECK (owner_id = current_account_id());
CREATE POLICY attachments_sweep ON attachments FOR UPDATE
    USING (current_app_role() = 'evidence_sweeper' AND status IN ('uploading', 'finalizing'))
    WITH CHECK (current_app_role() = 'evidence_sweeper' AND status = 'deleted');

-- Who handled the evidence is for investigators (and the sweeper that appends to it).
CREATE POLICY attachment_custody_read ON attachment_custody FOR SELECT
    USING (current_app_role() = 'evidence_sweeper'
           OR (current_app_role() = 'investigator' AND NOT current_is_duress()));
CREATE POLICY attachment_custody_append ON attachment_custody FOR INSERT
    WITH CHECK (actor_id IS NOT DISTINCT FROM current_account_id()
                AND actor_role IS NOT DISTINCT FROM current_app_role()
                AND (current_app_role() = 'evidence_sweeper' OR NOT current_is_duress()));
