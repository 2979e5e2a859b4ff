-- Tip reports and their message threads (DESIGN §3, issue 4). The server stores ciphertext it
-- cannot read, the device's signature over it, and the receipt it answered with; nothing else
-- about the content. Row-level security keeps each operative to their own reports and threads.

CREATE TABLE reports (
    -- Chosen by the client, so a retried submission is recognised as the same report.
    id                uuid PRIMARY KEY,
    operative_id      uuid NOT NULL REFERENCES accounts (id),
    device_id         uuid NOT NULL REFERENCES devices (id),
    -- Kept as the exact string the device signed.
    sent_at           text NOT NULL CHECK (sent_at ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'),
    received_at       timestamptz NOT NULL,
    directory_version integer NOT NULL CHECK (directory_version >= 1),
    ciphertext        bytea NOT NULL,
    ciphertext_sha256 text NOT NULL CHECK (ciphertext_sha256 ~ '^[0-9a-f]{64}$'),
    signature         text NOT NULL CHECK (length(signature) BETWEEN 1 AND 200),
    receipt           text NOT NULL CHECK (receipt ~ '^[0-9a-f]{64}$'),
    status            text NOT NULL DEFAULT 'new' CHECK (status IN
                          ('new', 'in_review', 'verified', 'rejected', 'duplicate', 'needs_info')),
    priority          smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 3),
    updated_at        timestamptz
);
-- Keyset pagination of the queue, newest first, with and without a status filter.
CREATE INDEX reports_queue_idx ON reports (received_at DESC, id DESC);
CREATE INDEX reports_status_queue_idx ON reports (status, received_at DESC, id DESC);
CREATE INDEX reports_operative_idx ON reports (operative_id, received_at DESC, id DESC);

CREATE TABLE report_messages (
    id                uuid PRIMARY KEY,
    report_id         uuid NOT NULL REFERENCES reports (id),
    author_id         uuid NOT NULL REFERENCES accounts (id),
    author_role       text NOT NULL CHECK (author_role IN ('operative', 'investigator')),
    device_id         uuid NOT NULL REFERENCES devices (id),
    -- The signing key as it was, so either side can verify the thread without seeing the
    -- other side's device records.
    device_key        jsonb NOT NULL,
    sent_at           text NOT NULL CHECK (sent_at ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'),
    received_at       timestamptz NOT NULL DEFAULT now(),
    ciphertext        bytea NOT NULL,
    ciphertext_sha256 text NOT NULL CHECK (ciphertext_sha256 ~ '^[0-9a-f]{64}$'),
    signature         text NOT NULL CHECK (length(signature) BETWEEN 1 AND 200)
);
CREATE INDEX report_messages_thread_idx ON report_messages (report_id, received_at, id);

CREATE TABLE message_reads (
    message_id uuid NOT NULL REFERENCES report_messages (id),
    account_id uuid NOT NULL REFERENCES accounts (id),
    read_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, account_id)
);

GRANT SELECT, INSERT ON reports, report_messages TO tipline_app;
GRANT UPDATE (status, priority, updated_at) ON reports TO tipline_app;
GRANT SELECT, INSERT ON message_reads TO tipline_app;

ALTER TABLE reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE reports FORCE ROW LEVEL SECURITY;
ALTER TABLE report_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE report_messages FORCE ROW LEVEL SECURITY;
ALTER TABLE message_reads ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_reads FORCE ROW LEVEL SECURITY;

-- Investigators work the whole queue; an operative sees only their own reports, and a duress
-- session sees none.
CREATE POLICY reports_read ON reports FOR SELECT
    USING (NOT current_is_duress()
           AND (current_app_role() = 'investigator'
                OR (current_app_role() = 'operative' AND operative_id = current_account_id())));
CREATE POLICY reports_submit ON reports FOR INSERT
    WITH CHECK (NOT current_is_duress()
                AND current_app_role() = 'operative' AND operative_id = current_account_id());
CREATE POLICY reports_triage ON reports FOR UPDATE
    USING (current_app_role() = 'investigator' AND NOT current_is_duress());

CREATE POLICY report_messages_read ON report_messages FOR SELECT
    USING (NOT current_is_duress()
           AND (current_app_role() = 'investigator'
                OR (current_app_role() = 'operative'
                    AND EXISTS (SELECT FROM reports r
                                WHERE r.id = report_id AND r.operative_id = current_account_id()))));
CREATE POLICY report_messages_write ON report_messages FOR INSERT
    WITH CHECK (NOT current_is_duress()
                AND author_id = current_account_id()
                AND author_role = current_app_role()
                AND (current_app_role() = 'investigator'
                     OR (current_app_role() = 'operative'
                         AND EXISTS (SELECT FROM reports r
                                     WHERE r.id = report_id
                                       AND r.operative_id = current_account_id()))));

CREATE POLICY message_reads_own ON message_reads
    USING (account_id = current_account_id() AND NOT current_is_duress())
    WITH CHECK (account_id = current_account_id() AND NOT current_is_duress());
