-- The hot path as single statements (issue 4 benchmark). Every report submission is two
-- requests to PostgreSQL: the session check and the intake. Run as plain transactions each
-- would be BEGIN, the RLS context, the work, COMMIT: four round trips, and on a 2-core machine
-- the service is bound by the CPU those round trips cost in Python, not by PostgreSQL.
--
-- So each is one function call in its own implicit transaction. Each function enters its RLS
-- context through `enter_context`, the same function `server.db.transaction` uses, and leaves
-- it empty again, so neither can widen what a caller's transaction sees.

-- The one definition of how a context is entered: transaction-local settings that the policies
-- read through current_account_id(), current_app_role() and current_is_duress().
CREATE FUNCTION enter_context(p_account_id text, p_role text, p_duress text) RETURNS void
    LANGUAGE sql
    AS $$
    SELECT set_config('tipline.account_id', p_account_id, true),
           set_config('tipline.role', p_role, true),
           set_config('tipline.duress', p_duress, true);
$$;

-- The one way an audit event is appended, from Python (audit.record) and from SQL alike. The id
-- is drawn here rather than returned by INSERT ... RETURNING, which row-level security would
-- refuse to a writer that may append but not read the log (an operative).
CREATE FUNCTION audit_append(p_actor_id uuid, p_actor_role text, p_action text,
                             p_subject_type text, p_subject_id text, p_detail jsonb)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = tipline, pg_catalog
    AS $$
DECLARE
    event_id bigint := nextval(pg_get_serial_sequence('tipline.audit_events', 'id'));
BEGIN
    INSERT INTO audit_events (id, actor_id, actor_role, action, subject_type, subject_id, detail)
    OVERRIDING SYSTEM VALUE
    VALUES (event_id, p_actor_id, p_actor_role, p_action, p_subject_type, p_subject_id, p_detail);
    RETURN event_id;
END
$$;

-- Refuses to run inside a transaction that already has a context: these functions set their
-- own, and must never run with (or leave behind) anyone else's.
CREATE FUNCTION require_no_context() RETURNS void
    LANGUAGE plpgsql
    SET search_path = tipline, pg_catalog
    AS $$
BEGIN
    IF current_app_role() IS NOT NULL OR current_account_id() IS NOT NULL THEN
        RAISE EXCEPTION 'this function sets its own row-level security context'
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
END
$$;

-- identity.authenticate: the live session for this token hash and device-key thumbprint, and
-- whether the DPoP proof's jti is fresh (recorded now, never seen before). A replayed proof
-- does not touch the idle timer: a captured request must not keep a session alive.
--
-- Two costs are cut here, each with its reason:
-- * The idle timer is moved only once it is a twentieth of the idle timeout old, not on every
--   request, so a busy session writes a fraction of the rows. A session can therefore expire
--   up to 5 % of its idle timeout early, never late.
-- * This transaction commits without waiting for its WAL flush (synchronous_commit off): a
--   flush is the largest cost of a small write. PostgreSQL writes WAL in order, so the request's
--   own durable commit (a report, a message, a triage) flushes this one too. Only a read-only
--   request's jti can be lost, and only if PostgreSQL crashes within the next ~0.6 s
--   (3 x wal_writer_delay); a replay of that read then needs the token, the proof and the
--   response's content already seen, and must fall inside the proof's 60 s lifetime.
CREATE FUNCTION authenticate_session(p_token_hash bytea, p_thumbprint text, p_jti_hash bytea,
                                     p_replay_ttl_s double precision)
    RETURNS TABLE (session_id uuid, account_id uuid, device_id uuid, duress boolean,
                   role text, handle text, proof_is_fresh boolean)
    LANGUAGE plpgsql
    SET search_path = tipline, pg_catalog
    AS $$
#variable_conflict use_column
DECLARE
    live record;
BEGIN
    PERFORM require_no_context();
    PERFORM enter_context('', 'authenticator', 'false');
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT s.id, s.account_id, s.device_id, s.duress, a.role, a.handle INTO live
    FROM sessions s
    JOIN accounts a ON a.id = s.account_id
    JOIN devices d ON d.id = s.device_id
    WHERE s.token_hash = p_token_hash
      AND s.ended_at IS NULL
      AND now() < s.expires_at
      AND now() < s.last_seen_at + s.idle_timeout
      AND a.status = 'active'
      AND d.revoked_at IS NULL AND d.thumbprint = p_thumbprint;
    IF FOUND THEN
        INSERT INTO dpop_replay (jti_hash, expires_at)
        VALUES (p_jti_hash, now() + make_interval(secs => p_replay_ttl_s))
        ON CONFLICT (jti_hash) DO NOTHING;
        proof_is_fresh := FOUND;
        IF proof_is_fresh THEN
            UPDATE sessions SET last_seen_at = greatest(last_seen_at, now())
            WHERE id = live.id AND ended_at IS NULL AND last_seen_at < now() - idle_timeout / 20;
        END IF;
        session_id := live.id;
        account_id := live.account_id;
        device_id := live.device_id;
        duress := live.duress;
        role := live.role;
        handle := live.handle;
        RETURN NEXT;
    END IF;
    PERFORM enter_context('', '', '');
END
$$;

-- reports.submit: the whole idempotent intake in one statement, under the operative's own
-- context. The caller has already checked the signature and the envelope against directory
-- version p_directory_version; the version check here is atomic with the insert, so a
-- directory published meanwhile sends the phone back to re-encrypt.
--
-- Cited attachments are tied to the report in the same transaction: each must be complete, the
-- operative's own, uncited, and have the ciphertext digest the signed report declares (the
-- caller has checked all that for a precise error; a race lost meanwhile raises here, and
-- nothing is stored).
--
-- outcome: 'created' (stored now, audited, investigators notified); 'stored' (this id is
-- already this operative's report: the stored columns are returned to compare); 'taken' (the id
-- is someone else's); 'outdated' (current_version is the directory to encrypt to).
CREATE FUNCTION submit_report(p_account_id uuid, p_role text, p_duress boolean,
                              p_report_id uuid, p_device_id uuid, p_sent_at text,
                              p_received_at timestamptz, p_directory_version integer,
                              p_ciphertext bytea, p_ciphertext_sha256 text, p_signature text,
                              p_receipt text, p_audit_detail jsonb,
                              p_attachment_ids uuid[], p_plaintext_sha256 text[],
                              p_attachment_ciphertext_sha256 text[])
    RETURNS TABLE (outcome text, current_version integer, sent_at text,
                   ciphertext_sha256 text, signature text, receipt text,
                   received_at timestamptz)
    LANGUAGE plpgsql
    SET search_path = tipline, pg_catalog
    AS $$
#variable_conflict use_column
DECLARE
    stored record;
    linked bigint;
BEGIN
    PERFORM require_no_context();
    PERFORM enter_context(p_account_id::text, p_role, p_duress::text);
    SELECT r.sent_at, r.ciphertext_sha256, r.signature, r.receipt, r.received_at INTO stored
    FROM reports r WHERE r.id = p_report_id;
    IF NOT FOUND THEN
        SELECT max(k.version) INTO current_version FROM key_directories k;
        IF current_version IS DISTINCT FROM p_directory_version THEN
            outcome := 'outdated';
            PERFORM enter_context('', '', '');
            RETURN NEXT;
            RETURN;
        END IF;
        INSERT INTO reports (id, operative_id, device_id, sent_at, received_at,
                             directory_version, ciphertext, ciphertext_sha256, signature, receipt)
        VALUES (p_report_id, p_account_id, p_device_id, p_sent_at, p_received_at,
                p_directory_version, p_ciphertext, p_ciphertext_sha256, p_signature, p_receipt)
        ON CONFLICT (id) DO NOTHING;
        IF FOUND THEN
            IF cardinality(p_attachment_ids) > 0 THEN
                UPDATE attachments a
                SET report_id = p_report_id, plaintext_sha256 = cited.plaintext_sha256
                FROM unnest(p_attachment_ids, p_plaintext_sha256, p_attachment_ciphertext_sha256)
                     AS cited (id, plaintext_sha256, ciphertext_sha256)
                WHERE a.id = cited.id AND a.owner_id = p_account_id AND a.status = 'complete'
                  AND a.report_id IS NULL AND a.ciphertext_sha256 = cited.ciphertext_sha256;
                GET DIAGNOSTICS linked = ROW_COUNT;
                IF linked <> cardinality(p_attachment_ids) THEN
                    RAISE EXCEPTION 'a cited attachment is not this report''s to cite'
                        USING ERRCODE = 'unique_violation';
                END IF;
            END IF;
            PERFORM audit_append(p_account_id, p_role, 'report.received', 'report',
                                 p_report_id::text, p_audit_detail);
            -- Last: it holds the lock that orders event ids by commit (0006_events.sql).
            PERFORM publish_event('report.received', p_report_id, p_report_id, NULL,
                                  'investigator');
            outcome := 'created';
            PERFORM enter_context('', '', '');
            RETURN NEXT;
            RETURN;
        END IF;
        -- A concurrent copy won the race: compare with it, if it is this operative's.
        SELECT r.sent_at, r.ciphertext_sha256, r.signature, r.receipt, r.received_at INTO stored
        FROM reports r WHERE r.id = p_report_id;
    END IF;
    IF stored IS NULL THEN
        outcome := 'taken';
    ELSE
        outcome := 'stored';
        sent_at := stored.sent_at;
        ciphertext_sha256 := stored.ciphertext_sha256;
        signature := stored.signature;
        receipt := stored.receipt;
        received_at := stored.received_at;
    END IF;
    PERFORM enter_context('', '', '');
    RETURN NEXT;
END
$$;

GRANT EXECUTE ON FUNCTION enter_context(text, text, text),
                          audit_append(uuid, text, text, text, text, jsonb),
                          require_no_context(),
                          authenticate_session(bytea, text, bytea, double precision),
                          submit_report(uuid, text, boolean, uuid, uuid, text, timestamptz,
                                        integer, bytea, text, text, text, jsonb, uuid[],
                                        text[], text[])
    TO tipline_app;
