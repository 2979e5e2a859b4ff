-- The data model as the migrations in sql/migrations/ build it (pg_dump --schema-only),
-- kept so the whole schema can be read in one place. Generated: do not edit; see
-- tests/foundation/test_schema.py, which fails when this file and the migrations differ.

CREATE SCHEMA tipline;

ALTER SCHEMA tipline OWNER TO tipline_owner;

CREATE FUNCTION tipline.accounts_guard_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
DECLARE
    context text := current_app_role();
BEGIN
    IF context = 'authenticator' THEN
        -- Login and enrolment: activate, consume TOTP steps, rehash, set factors on an
        -- account being (re-)enrolled, raise alarms. Never lower an alarm or reactivate.
        IF (OLD.status, NEW.status) NOT IN (('enrolling', 'enrolling'), ('enrolling', 'active'),
                                            ('active', 'active'), ('suspended', 'suspended'))
           OR NEW.totp_last_step < OLD.totp_last_step
           OR (OLD.duress_at IS NOT NULL AND NEW.duress_at IS DISTINCT FROM OLD.duress_at)
           OR (OLD.locked_at IS NOT NULL AND NEW.locked_at IS DISTINCT FROM OLD.locked_at)
           OR (NEW.duress_hash IS DISTINCT FROM OLD.duress_hash)
           OR (OLD.status <> 'enrolling' AND (NEW.totp_seed_sealed IS DISTINCT FROM OLD.totp_seed_sealed
                                              OR NEW.age_recipient IS DISTINCT FROM OLD.age_recipient))
        THEN
            RAISE EXCEPTION 'account change refused' USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSIF context = 'admin' AND OLD.id <> current_account_id() AND OLD.role <> 'investigator' THEN
        -- Suspend, reactivate, reset factors (everything to NULL, back to enrolling), unlock;
        -- never activate an account whose holder has not confirmed a TOTP code.
        IF (OLD.status = 'enrolling' AND NEW.status <> 'enrolling')
           OR (NEW.password_hash IS NOT NULL AND NEW.password_hash IS DISTINCT FROM OLD.password_hash)
           OR (NEW.duress_hash IS NOT NULL AND NEW.duress_hash IS DISTINCT FROM OLD.duress_hash)
           OR (NEW.totp_seed_sealed IS NOT NULL
               AND NEW.totp_seed_sealed IS DISTINCT FROM OLD.totp_seed_sealed)
           OR NEW.age_recipient IS DISTINCT FROM OLD.age_recipient
           OR NEW.duress_at IS DISTINCT FROM OLD.duress_at
           OR (NEW.locked_at IS NOT NULL AND NEW.locked_at IS DISTINCT FROM OLD.locked_at)
           OR (NEW.totp_last_step IS NOT NULL AND NEW.totp_last_step IS DISTINCT FROM OLD.totp_last_step)
        THEN
            RAISE EXCEPTION 'account change refused' USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSIF OLD.id = current_account_id() AND context <> 'admin' AND NOT current_is_duress() THEN
        -- The holder may set a duress password, and nothing else.
        IF (NEW.status, NEW.password_hash, NEW.totp_seed_sealed, NEW.totp_last_step,
            NEW.age_recipient, NEW.duress_at, NEW.locked_at)
           IS DISTINCT FROM (OLD.status, OLD.password_hash, OLD.totp_seed_sealed,
                             OLD.totp_last_step, OLD.age_recipient, OLD.duress_at, OLD.locked_at)
        THEN
            RAISE EXCEPTION 'account change refused' USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSE
        RAISE EXCEPTION 'account change refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.accounts_guard_update() OWNER TO tipline_owner;

CREATE FUNCTION tipline.attachments_guard_update() RETURNS trigger
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

ALTER FUNCTION tipline.attachments_guard_update() OWNER TO tipline_owner;

CREATE FUNCTION tipline.audit_append(p_actor_id uuid, p_actor_role text, p_action text, p_subject_type text, p_subject_id text, p_detail jsonb) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
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

ALTER FUNCTION tipline.audit_append(p_actor_id uuid, p_actor_role text, p_action text, p_subject_type text, p_subject_id text, p_detail jsonb) OWNER TO tipline_owner;

CREATE FUNCTION tipline.audit_chain_check_link() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    previous bytea;
BEGIN
    IF NEW.position = 1 THEN
        previous := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    ELSE
        SELECT chain_hash INTO previous FROM tipline.audit_chain WHERE position = NEW.position - 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit chain position % does not follow the head', NEW.position
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END IF;
    IF NEW.chain_hash <> sha256('\x00'::bytea || previous || NEW.entry_hash) THEN
        RAISE EXCEPTION 'audit chain link at position % does not match', NEW.position
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    NEW.sealed_at := clock_timestamp();
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.audit_chain_check_link() OWNER TO tipline_owner;

CREATE FUNCTION tipline.audit_events_stamp() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM currval(pg_get_serial_sequence('tipline.audit_events', 'id')) THEN
        RAISE EXCEPTION 'audit event ids come from the sequence'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.occurred_at := clock_timestamp();
    NEW.xact := pg_current_xact_id();
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.audit_events_stamp() OWNER TO tipline_owner;

CREATE FUNCTION tipline.audit_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'tipline.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

ALTER FUNCTION tipline.audit_refuse_change() OWNER TO tipline_owner;

CREATE FUNCTION tipline.audit_seal_horizon_forward() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.horizon < OLD.horizon THEN
        RAISE EXCEPTION 'the seal horizon only moves forward'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.audit_seal_horizon_forward() OWNER TO tipline_owner;

CREATE FUNCTION tipline.authenticate_session(p_token_hash bytea, p_thumbprint text, p_jti_hash bytea, p_replay_ttl_s double precision) RETURNS TABLE(session_id uuid, account_id uuid, device_id uuid, duress boolean, role text, handle text, proof_is_fresh boolean)
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
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

ALTER FUNCTION tipline.authenticate_session(p_token_hash bytea, p_thumbprint text, p_jti_hash bytea, p_replay_ttl_s double precision) OWNER TO tipline_owner;

CREATE FUNCTION tipline.current_account_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('tipline.account_id', true), '')::uuid $$;

ALTER FUNCTION tipline.current_account_id() OWNER TO tipline_owner;

CREATE FUNCTION tipline.current_app_role() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('tipline.role', true), '') $$;

ALTER FUNCTION tipline.current_app_role() OWNER TO tipline_owner;

CREATE FUNCTION tipline.current_is_duress() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(nullif(current_setting('tipline.duress', true), '')::boolean, false) $$;

ALTER FUNCTION tipline.current_is_duress() OWNER TO tipline_owner;

CREATE FUNCTION tipline.devices_refuse_unrevoke() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'a revoked device stays revoked' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.devices_refuse_unrevoke() OWNER TO tipline_owner;

CREATE FUNCTION tipline.enter_context(p_account_id text, p_role text, p_duress text) RETURNS void
    LANGUAGE sql
    AS $$
    SELECT set_config('tipline.account_id', p_account_id, true),
           set_config('tipline.role', p_role, true),
           set_config('tipline.duress', p_duress, true);
$$;

ALTER FUNCTION tipline.enter_context(p_account_id text, p_role text, p_duress text) OWNER TO tipline_owner;

CREATE FUNCTION tipline.event_session_is_live(p_session_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT EXISTS (
        SELECT FROM tipline.sessions s
        JOIN tipline.accounts a ON a.id = s.account_id
        JOIN tipline.devices d ON d.id = s.device_id
        WHERE s.id = p_session_id
          AND s.ended_at IS NULL
          AND now() < s.expires_at
          AND now() < s.last_seen_at + s.idle_timeout
          AND a.status = 'active'
          AND d.revoked_at IS NULL)
$$;

ALTER FUNCTION tipline.event_session_is_live(p_session_id uuid) OWNER TO tipline_owner;

CREATE FUNCTION tipline.events_stamp() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tipline.events'));
    NEW.id := nextval('tipline.events_id_seq');
    NEW.created_at := now();
    IF current_is_duress() THEN
        RETURN NULL;
    END IF;
    -- Delivered only if and when this transaction commits.
    PERFORM pg_notify('tipline_events', NEW.id::text);
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.events_stamp() OWNER TO tipline_owner;

CREATE FUNCTION tipline.key_directories_only_forward() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tipline.key_directories'));
    IF EXISTS (SELECT FROM tipline.key_directories WHERE version >= NEW.version) THEN
        RAISE EXCEPTION 'key directory version % is not above the current one', NEW.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.published_at := now();
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.key_directories_only_forward() OWNER TO tipline_owner;

CREATE FUNCTION tipline.lead_reports_only_verified() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM reports WHERE id = NEW.report_id AND status = 'verified') THEN
        RAISE EXCEPTION 'a lead is built from verified reports only'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.lead_reports_only_verified() OWNER TO tipline_owner;

CREATE FUNCTION tipline.lead_shares_guard_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
BEGIN
    IF (OLD.revoked_at IS NOT NULL
        AND (NEW.revoked_at, NEW.revoked_by) IS DISTINCT FROM (OLD.revoked_at, OLD.revoked_by))
       OR (OLD.approved_at IS NOT NULL
           AND (NEW.approved_at, NEW.approved_by) IS DISTINCT FROM (OLD.approved_at, OLD.approved_by))
       OR (NEW.approved_by IS DISTINCT FROM OLD.approved_by
           AND NEW.approved_by IS DISTINCT FROM current_account_id())
       OR (NEW.revoked_by IS DISTINCT FROM OLD.revoked_by
           AND NEW.revoked_by IS DISTINCT FROM current_account_id()) THEN
        RAISE EXCEPTION 'share change refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Stamped by the database clock: a backdated revocation would hide from the exposure
    -- analysis that the officer could read the lead.
    IF NEW.approved_at IS DISTINCT FROM OLD.approved_at THEN
        NEW.approved_at := now();
    END IF;
    IF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        NEW.revoked_at := now();
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.lead_shares_guard_update() OWNER TO tipline_owner;

CREATE FUNCTION tipline.leads_guard_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
BEGIN
    IF (OLD.status, NEW.status) NOT IN (('open', 'shared'), ('shared', 'actioned'),
                                        ('open', 'closed'), ('shared', 'closed'),
                                        ('actioned', 'closed'))
       OR NEW.ciphertext IS DISTINCT FROM OLD.ciphertext
       OR (current_app_role() = 'officer' AND NEW.status <> 'actioned') THEN
        RAISE EXCEPTION 'lead change refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.leads_guard_update() OWNER TO tipline_owner;

CREATE FUNCTION tipline.officer_is_cleared(p_officer uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
    SELECT EXISTS (
        SELECT FROM officers o
        JOIN accounts a ON a.id = o.account_id
        WHERE o.account_id = p_officer
          AND o.status = 'active'
          AND a.status = 'active'
          AND now() < (o.review_due::timestamp AT TIME ZONE 'UTC'))
$$;

ALTER FUNCTION tipline.officer_is_cleared(p_officer uuid) OWNER TO tipline_owner;

CREATE FUNCTION tipline.officers_guard_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
DECLARE
    me uuid := current_account_id();
    same_terms boolean := (NEW.unit, NEW.rank, NEW.review_due, NEW.proposed_by, NEW.proposed_at)
                          IS NOT DISTINCT FROM
                          (OLD.unit, OLD.rank, OLD.review_due, OLD.proposed_by, OLD.proposed_at);
    same_approval boolean := (NEW.approved_by, NEW.approved_at)
                             IS NOT DISTINCT FROM (OLD.approved_by, OLD.approved_at);
    lapsed boolean := now() >= (OLD.review_due::timestamp AT TIME ZONE 'UTC');
BEGIN
    IF current_app_role() IS NULL THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'revoked' THEN
        RAISE EXCEPTION 'a revoked officer stays revoked' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT (
        -- approval: proposed -> active, by someone else (the CHECK), in their own name
        (OLD.status = 'proposed' AND NEW.status = 'active' AND same_terms
         AND NEW.approved_by = me AND NEW.approved_at IS NOT NULL
         AND NEW.status_changed_by IS NOT DISTINCT FROM OLD.status_changed_by)
        -- suspension or revocation, at once, by one investigator in their own name
        OR (NEW.status IN ('suspended', 'revoked') AND NEW.status <> OLD.status
            AND same_terms AND same_approval AND NEW.status_changed_by = me)
        -- renewal: a suspended or lapsed vetting becomes a new proposal, in the proposer's name
        OR (NEW.status = 'proposed'
            AND (OLD.status = 'suspended' OR (OLD.status = 'active' AND lapsed))
            AND NEW.proposed_by = me AND NEW.approved_by IS NULL AND NEW.approved_at IS NULL)
    ) THEN
        RAISE EXCEPTION 'vetting change refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- History is stamped by the database clock, never by the caller.
    IF NEW.approved_at IS DISTINCT FROM OLD.approved_at AND NEW.approved_at IS NOT NULL THEN
        NEW.approved_at := now();
    END IF;
    IF NEW.proposed_at IS DISTINCT FROM OLD.proposed_at THEN
        NEW.proposed_at := now();
    END IF;
    IF NEW.status_changed_by IS DISTINCT FROM OLD.status_changed_by
       OR NEW.status_changed_at IS DISTINCT FROM OLD.status_changed_at THEN
        NEW.status_changed_at := now();
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.officers_guard_update() OWNER TO tipline_owner;

CREATE FUNCTION tipline.publish_event(p_kind text, p_subject_id uuid, p_report_id uuid, p_audience_account uuid, p_audience_role text) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO tipline.events (kind, subject_id, report_id, audience_account, audience_role)
    VALUES (p_kind, p_subject_id, p_report_id, p_audience_account, p_audience_role);
    RETURN currval('tipline.events_id_seq');
END
$$;

ALTER FUNCTION tipline.publish_event(p_kind text, p_subject_id uuid, p_report_id uuid, p_audience_account uuid, p_audience_role text) OWNER TO tipline_owner;

CREATE FUNCTION tipline.raise_officer_alert(p_kind text, p_dedupe_s double precision) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
    INSERT INTO officer_alerts (officer_id, kind)
    SELECT current_account_id(), p_kind
    WHERE current_app_role() = 'officer'
      AND NOT EXISTS (SELECT FROM officer_alerts
                      WHERE officer_id = current_account_id() AND kind = p_kind
                        AND raised_at > now() - make_interval(secs => p_dedupe_s))
    RETURNING true;
$$;

ALTER FUNCTION tipline.raise_officer_alert(p_kind text, p_dedupe_s double precision) OWNER TO tipline_owner;

CREATE FUNCTION tipline.reports_guard_shred() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
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

ALTER FUNCTION tipline.reports_guard_shred() OWNER TO tipline_owner;

CREATE FUNCTION tipline.require_no_context() RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
BEGIN
    IF current_app_role() IS NOT NULL OR current_account_id() IS NOT NULL THEN
        RAISE EXCEPTION 'this function sets its own row-level security context'
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
END
$$;

ALTER FUNCTION tipline.require_no_context() OWNER TO tipline_owner;

CREATE FUNCTION tipline.sessions_refuse_revive() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
BEGIN
    IF (OLD.ended_at IS NOT NULL AND NEW.ended_at IS DISTINCT FROM OLD.ended_at)
       OR NEW.last_seen_at < OLD.last_seen_at THEN
        RAISE EXCEPTION 'an ended session stays ended' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

ALTER FUNCTION tipline.sessions_refuse_revive() OWNER TO tipline_owner;

CREATE FUNCTION tipline.share_is_open(p_officer uuid, p_requires_approval boolean, p_approved_at timestamp with time zone, p_revoked_at timestamp with time zone, p_not_before timestamp with time zone, p_expires_at timestamp with time zone) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path TO 'tipline', 'pg_catalog'
    AS $$
    SELECT p_revoked_at IS NULL
           AND (NOT p_requires_approval OR p_approved_at IS NOT NULL)
           AND p_not_before <= now() AND now() < p_expires_at
           AND officer_is_cleared(p_officer)
$$;

ALTER FUNCTION tipline.share_is_open(p_officer uuid, p_requires_approval boolean, p_approved_at timestamp with time zone, p_revoked_at timestamp with time zone, p_not_before timestamp with time zone, p_expires_at timestamp with time zone) OWNER TO tipline_owner;

CREATE FUNCTION tipline.submit_report(p_account_id uuid, p_role text, p_duress boolean, p_report_id uuid, p_device_id uuid, p_sent_at text, p_received_at timestamp with time zone, p_directory_version integer, p_ciphertext bytea, p_ciphertext_sha256 text, p_signature text, p_receipt text, p_audit_detail jsonb, p_attachment_ids uuid[], p_plaintext_sha256 text[], p_attachment_ciphertext_sha256 text[]) RETURNS TABLE(outcome text, current_version integer, sent_at text, ciphertext_sha256 text, signature text, receipt text, received_at timestamp with time zone)
    LANGUAGE plpgsql
    SET search_path TO 'tipline', 'pg_catalog'
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

ALTER FUNCTION tipline.submit_report(p_account_id uuid, p_role text, p_duress boolean, p_report_id uuid, p_device_id uuid, p_sent_at text, p_received_at timestamp with time zone, p_directory_version integer, p_ciphertext bytea, p_ciphertext_sha256 text, p_signature text, p_receipt text, p_audit_detail jsonb, p_attachment_ids uuid[], p_plaintext_sha256 text[], p_attachment_ciphertext_sha256 text[]) OWNER TO tipline_owner;

CREATE TABLE tipline.accounts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    handle text NOT NULL,
    role text NOT NULL,
    status text DEFAULT 'enrolling'::text NOT NULL,
    password_hash text,
    duress_hash text,
    totp_seed_sealed bytea,
    totp_last_step bigint,
    age_recipient text,
    duress_at timestamp with time zone,
    locked_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT accounts_age_recipient_check CHECK ((age_recipient ~ '^age1[02-9ac-hj-np-z]{58}$'::text)),
    CONSTRAINT accounts_check CHECK (((status = 'enrolling'::text) OR ((password_hash IS NOT NULL) AND (totp_seed_sealed IS NOT NULL)))),
    CONSTRAINT accounts_duress_hash_check CHECK ((duress_hash ~ '^\$argon2'::text)),
    CONSTRAINT accounts_handle_check CHECK ((handle ~ '^[a-z0-9][a-z0-9_.-]{2,31}$'::text)),
    CONSTRAINT accounts_password_hash_check CHECK ((password_hash ~ '^\$argon2'::text)),
    CONSTRAINT accounts_role_check CHECK ((role = ANY (ARRAY['operative'::text, 'investigator'::text, 'officer'::text, 'admin'::text]))),
    CONSTRAINT accounts_status_check CHECK ((status = ANY (ARRAY['enrolling'::text, 'active'::text, 'suspended'::text])))
);

ALTER TABLE ONLY tipline.accounts FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.accounts OWNER TO tipline_owner;

CREATE TABLE tipline.attachment_custody (
    id bigint NOT NULL,
    attachment_id uuid NOT NULL,
    audit_event_id bigint NOT NULL,
    event text NOT NULL,
    actor_id uuid,
    actor_role text,
    occurred_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    range_start bigint,
    range_end bigint,
    CONSTRAINT attachment_custody_actor_role_check CHECK ((actor_role ~ '^[a-z_]{1,32}$'::text)),
    CONSTRAINT attachment_custody_check CHECK ((range_end >= range_start)),
    CONSTRAINT attachment_custody_event_check CHECK ((event = ANY (ARRAY['received'::text, 'completed'::text, 'downloaded'::text, 'exported'::text, 'deleted'::text]))),
    CONSTRAINT attachment_custody_range_start_check CHECK ((range_start >= 0))
);

ALTER TABLE ONLY tipline.attachment_custody FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.attachment_custody OWNER TO tipline_owner;

ALTER TABLE tipline.attachment_custody ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME tipline.attachment_custody_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE tipline.attachments (
    id uuid NOT NULL,
    owner_id uuid NOT NULL,
    owner_role text NOT NULL,
    device_id uuid NOT NULL,
    storage_key text NOT NULL,
    storage_state text DEFAULT ''::text NOT NULL,
    upload_length bigint NOT NULL,
    declared_sha256 text NOT NULL,
    upload_offset bigint DEFAULT 0 NOT NULL,
    ciphertext_sha256 text,
    status text DEFAULT 'uploading'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    completed_at timestamp with time zone,
    lease_id uuid,
    lease_until timestamp with time zone,
    report_id uuid,
    plaintext_sha256 text,
    CONSTRAINT attachments_check CHECK (((upload_offset >= 0) AND (upload_offset <= upload_length))),
    CONSTRAINT attachments_check1 CHECK (((status <> 'finalizing'::text) OR (upload_offset = upload_length))),
    CONSTRAINT attachments_check2 CHECK (((status <> 'complete'::text) OR ((upload_offset = upload_length) AND (ciphertext_sha256 IS NOT NULL) AND (completed_at IS NOT NULL)))),
    CONSTRAINT attachments_check4 CHECK (((report_id IS NULL) = (plaintext_sha256 IS NULL))),
    CONSTRAINT attachments_ciphertext_sha256_check CHECK ((ciphertext_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT attachments_cited_is_evidence CHECK (((report_id IS NULL) OR (status = ANY (ARRAY['complete'::text, 'deleted'::text])))),
    CONSTRAINT attachments_declared_sha256_check CHECK ((declared_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT attachments_owner_role_check CHECK ((owner_role = ANY (ARRAY['operative'::text, 'investigator'::text]))),
    CONSTRAINT attachments_plaintext_sha256_check CHECK ((plaintext_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT attachments_status_check CHECK ((status = ANY (ARRAY['uploading'::text, 'finalizing'::text, 'complete'::text, 'deleted'::text]))),
    CONSTRAINT attachments_storage_key_check CHECK ((storage_key ~ '^[0-9a-f]{32}$'::text)),
    CONSTRAINT attachments_storage_state_check CHECK ((octet_length(storage_state) <= 65536)),
    CONSTRAINT attachments_upload_length_check CHECK ((upload_length > 0))
);

ALTER TABLE ONLY tipline.attachments FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.attachments OWNER TO tipline_owner;

CREATE TABLE tipline.audit_chain (
    "position" bigint NOT NULL,
    event_id bigint NOT NULL,
    entry_hash bytea NOT NULL,
    chain_hash bytea NOT NULL,
    sealed_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT audit_chain_chain_hash_check CHECK ((octet_length(chain_hash) = 32)),
    CONSTRAINT audit_chain_entry_hash_check CHECK ((octet_length(entry_hash) = 32)),
    CONSTRAINT audit_chain_position_check CHECK (("position" >= 1))
);

ALTER TABLE ONLY tipline.audit_chain FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.audit_chain OWNER TO tipline_owner;

CREATE TABLE tipline.audit_checkpoints (
    "position" bigint NOT NULL,
    chain_hash bytea NOT NULL,
    signature bytea NOT NULL,
    signed_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT audit_checkpoints_chain_hash_check CHECK ((octet_length(chain_hash) = 32)),
    CONSTRAINT audit_checkpoints_signature_check CHECK ((octet_length(signature) = 64))
);

ALTER TABLE ONLY tipline.audit_checkpoints FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.audit_checkpoints OWNER TO tipline_owner;

CREATE TABLE tipline.audit_events (
    id bigint NOT NULL,
    occurred_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    actor_id uuid,
    actor_role text,
    action text NOT NULL,
    subject_type text,
    subject_id text,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    xact xid8 DEFAULT '0'::xid8 NOT NULL,
    CONSTRAINT audit_events_action_check CHECK ((action ~ '^[a-z_]{1,32}(\.[a-z_]{1,32}){1,2}$'::text)),
    CONSTRAINT audit_events_actor_role_check CHECK ((actor_role ~ '^[a-z_]{1,32}$'::text)),
    CONSTRAINT audit_events_detail_check CHECK ((jsonb_typeof(detail) = 'object'::text)),
    CONSTRAINT audit_events_detail_check1 CHECK ((octet_length((detail)::text) <= 2048)),
    CONSTRAINT audit_events_detail_check2 CHECK ((NOT jsonb_path_exists(detail, '$.*?((@.type() == "object" || @.type() == "array") || @.type() == "null")'::jsonpath))),
    CONSTRAINT audit_events_subject_id_check CHECK (((length(subject_id) >= 1) AND (length(subject_id) <= 200))),
    CONSTRAINT audit_events_subject_type_check CHECK ((subject_type ~ '^[a-z_]{1,32}$'::text))
);

ALTER TABLE ONLY tipline.audit_events FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.audit_events OWNER TO tipline_owner;

ALTER TABLE tipline.audit_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME tipline.audit_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE tipline.audit_seal_horizon (
    singleton boolean DEFAULT true NOT NULL,
    horizon xid8 NOT NULL,
    CONSTRAINT audit_seal_horizon_singleton_check CHECK (singleton)
);

ALTER TABLE ONLY tipline.audit_seal_horizon FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.audit_seal_horizon OWNER TO tipline_owner;

CREATE TABLE tipline.devices (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    account_id uuid NOT NULL,
    public_jwk jsonb NOT NULL,
    thumbprint text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    CONSTRAINT devices_public_jwk_check CHECK (((jsonb_typeof(public_jwk) = 'object'::text) AND (NOT (public_jwk ? 'd'::text)))),
    CONSTRAINT devices_thumbprint_check CHECK ((thumbprint ~ '^[A-Za-z0-9_-]{43}$'::text))
);

ALTER TABLE ONLY tipline.devices FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.devices OWNER TO tipline_owner;

CREATE TABLE tipline.dpop_replay (
    jti_hash bytea NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT dpop_replay_jti_hash_check CHECK ((octet_length(jti_hash) = 32))
);

ALTER TABLE ONLY tipline.dpop_replay FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.dpop_replay OWNER TO tipline_owner;

CREATE TABLE tipline.events (
    id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    kind text NOT NULL,
    subject_id uuid NOT NULL,
    report_id uuid NOT NULL,
    audience_account uuid,
    audience_role text,
    CONSTRAINT events_audience_role_check CHECK ((audience_role = ANY (ARRAY['investigator'::text, 'officer'::text, 'operative'::text, 'admin'::text]))),
    CONSTRAINT events_check CHECK (((audience_account IS NULL) <> (audience_role IS NULL))),
    CONSTRAINT events_kind_check CHECK ((kind = ANY (ARRAY['report.received'::text, 'report.status_changed'::text, 'message.received'::text, 'share.available'::text])))
);

ALTER TABLE ONLY tipline.events FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.events OWNER TO tipline_owner;

CREATE SEQUENCE tipline.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE tipline.events_id_seq OWNER TO tipline_owner;

ALTER SEQUENCE tipline.events_id_seq OWNED BY tipline.events.id;

CREATE TABLE tipline.evidence_decoys (
    account_id uuid NOT NULL,
    attachment_id uuid NOT NULL,
    upload_length bigint NOT NULL,
    declared_sha256 text NOT NULL,
    upload_offset bigint DEFAULT 0 NOT NULL,
    status text DEFAULT 'uploading'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    touched_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT evidence_decoys_check CHECK (((upload_offset >= 0) AND (upload_offset <= upload_length))),
    CONSTRAINT evidence_decoys_check1 CHECK (((status <> 'complete'::text) OR (upload_offset = upload_length))),
    CONSTRAINT evidence_decoys_declared_sha256_check CHECK ((declared_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT evidence_decoys_status_check CHECK ((status = ANY (ARRAY['uploading'::text, 'complete'::text, 'deleted'::text]))),
    CONSTRAINT evidence_decoys_upload_length_check CHECK ((upload_length > 0))
);

ALTER TABLE ONLY tipline.evidence_decoys FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.evidence_decoys OWNER TO tipline_owner;

CREATE TABLE tipline.invites (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    code_hash bytea NOT NULL,
    role text NOT NULL,
    handle text NOT NULL,
    created_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    redeemed_at timestamp with time zone,
    account_id uuid,
    CONSTRAINT invites_check CHECK ((expires_at > created_at)),
    CONSTRAINT invites_code_hash_check CHECK ((octet_length(code_hash) = 32)),
    CONSTRAINT invites_handle_check CHECK ((handle ~ '^[a-z0-9][a-z0-9_.-]{2,31}$'::text)),
    CONSTRAINT invites_role_check CHECK ((role = ANY (ARRAY['operative'::text, 'investigator'::text, 'officer'::text, 'admin'::text])))
);

ALTER TABLE ONLY tipline.invites FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.invites OWNER TO tipline_owner;

CREATE TABLE tipline.key_directories (
    version integer NOT NULL,
    directory bytea NOT NULL,
    signature bytea NOT NULL,
    published_by uuid NOT NULL,
    published_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT key_directories_directory_check CHECK (((octet_length(directory) >= 2) AND (octet_length(directory) <= 262144))),
    CONSTRAINT key_directories_signature_check CHECK ((octet_length(signature) = 64)),
    CONSTRAINT key_directories_version_check CHECK ((version > 0))
);

ALTER TABLE ONLY tipline.key_directories FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.key_directories OWNER TO tipline_owner;

CREATE TABLE tipline.lead_holds (
    lead_id uuid NOT NULL,
    placed_by uuid,
    placed_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY tipline.lead_holds FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.lead_holds OWNER TO tipline_owner;

CREATE TABLE tipline.lead_outcomes (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    lead_id uuid NOT NULL,
    officer_id uuid NOT NULL,
    outcome text NOT NULL,
    arrests integer DEFAULT 0 NOT NULL,
    victims_safe integer DEFAULT 0 NOT NULL,
    note_ciphertext bytea,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT lead_outcomes_arrests_check CHECK (((arrests >= 0) AND (arrests <= 10000))),
    CONSTRAINT lead_outcomes_outcome_check CHECK ((outcome = ANY (ARRAY['raid_done'::text, 'target_gone'::text, 'referred_to_aftercare'::text, 'no_action'::text]))),
    CONSTRAINT lead_outcomes_victims_safe_check CHECK (((victims_safe >= 0) AND (victims_safe <= 10000)))
);

ALTER TABLE ONLY tipline.lead_outcomes FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.lead_outcomes OWNER TO tipline_owner;

CREATE TABLE tipline.lead_reports (
    lead_id uuid NOT NULL,
    report_id uuid NOT NULL
);

ALTER TABLE ONLY tipline.lead_reports FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.lead_reports OWNER TO tipline_owner;

CREATE TABLE tipline.lead_shares (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    lead_id uuid NOT NULL,
    officer_id uuid NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    not_before timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    directory_version integer NOT NULL,
    ciphertext bytea NOT NULL,
    ciphertext_sha256 text NOT NULL,
    trace_digest text NOT NULL,
    requires_approval boolean NOT NULL,
    approved_by uuid,
    approved_at timestamp with time zone,
    revoked_by uuid,
    revoked_at timestamp with time zone,
    CONSTRAINT lead_shares_check CHECK ((not_before < expires_at)),
    CONSTRAINT lead_shares_check1 CHECK (((approved_by IS NULL) OR (approved_by <> created_by))),
    CONSTRAINT lead_shares_check2 CHECK (((approved_by IS NULL) = (approved_at IS NULL))),
    CONSTRAINT lead_shares_check3 CHECK (((revoked_by IS NULL) = (revoked_at IS NULL))),
    CONSTRAINT lead_shares_ciphertext_sha256_check CHECK ((ciphertext_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT lead_shares_directory_version_check CHECK ((directory_version >= 1)),
    CONSTRAINT lead_shares_trace_digest_check CHECK ((trace_digest ~ '^[0-9a-f]{64}$'::text))
);

ALTER TABLE ONLY tipline.lead_shares FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.lead_shares OWNER TO tipline_owner;

CREATE TABLE tipline.leads (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    ciphertext bytea NOT NULL,
    status text DEFAULT 'open'::text NOT NULL,
    updated_at timestamp with time zone,
    CONSTRAINT leads_status_check CHECK ((status = ANY (ARRAY['open'::text, 'shared'::text, 'actioned'::text, 'closed'::text])))
);

ALTER TABLE ONLY tipline.leads FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.leads OWNER TO tipline_owner;

CREATE TABLE tipline.login_throttle (
    subject_key bytea NOT NULL,
    consecutive_failures integer DEFAULT 0 NOT NULL,
    blocked_until timestamp with time zone,
    locked boolean DEFAULT false NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT login_throttle_consecutive_failures_check CHECK ((consecutive_failures >= 0)),
    CONSTRAINT login_throttle_subject_key_check CHECK ((octet_length(subject_key) = 32))
);

ALTER TABLE ONLY tipline.login_throttle FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.login_throttle OWNER TO tipline_owner;

CREATE TABLE tipline.message_reads (
    message_id uuid NOT NULL,
    account_id uuid NOT NULL,
    read_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY tipline.message_reads FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.message_reads OWNER TO tipline_owner;

CREATE TABLE tipline.officer_alerts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    officer_id uuid NOT NULL,
    kind text NOT NULL,
    raised_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT officer_alerts_kind_check CHECK ((kind = ANY (ARRAY['unusual_hour'::text, 'burst'::text, 'failed_checks'::text])))
);

ALTER TABLE ONLY tipline.officer_alerts FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.officer_alerts OWNER TO tipline_owner;

CREATE TABLE tipline.officers (
    account_id uuid NOT NULL,
    unit text NOT NULL,
    rank text NOT NULL,
    review_due date NOT NULL,
    status text DEFAULT 'proposed'::text NOT NULL,
    proposed_by uuid NOT NULL,
    proposed_at timestamp with time zone DEFAULT now() NOT NULL,
    approved_by uuid,
    approved_at timestamp with time zone,
    status_changed_by uuid,
    status_changed_at timestamp with time zone,
    CONSTRAINT officers_check CHECK (((approved_by IS NULL) OR (approved_by <> proposed_by))),
    CONSTRAINT officers_check1 CHECK (((status <> 'active'::text) OR ((approved_by IS NOT NULL) AND (approved_at IS NOT NULL)))),
    CONSTRAINT officers_rank_check CHECK (((length(rank) >= 1) AND (length(rank) <= 60))),
    CONSTRAINT officers_status_check CHECK ((status = ANY (ARRAY['proposed'::text, 'active'::text, 'suspended'::text, 'revoked'::text]))),
    CONSTRAINT officers_unit_check CHECK (((length(unit) >= 1) AND (length(unit) <= 100)))
);

ALTER TABLE ONLY tipline.officers FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.officers OWNER TO tipline_owner;

CREATE TABLE tipline.report_messages (
    id uuid NOT NULL,
    report_id uuid NOT NULL,
    author_id uuid NOT NULL,
    author_role text NOT NULL,
    device_id uuid NOT NULL,
    device_key jsonb NOT NULL,
    sent_at text NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    ciphertext bytea NOT NULL,
    ciphertext_sha256 text NOT NULL,
    signature text NOT NULL,
    CONSTRAINT report_messages_author_role_check CHECK ((author_role = ANY (ARRAY['operative'::text, 'investigator'::text]))),
    CONSTRAINT report_messages_ciphertext_sha256_check CHECK ((ciphertext_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT report_messages_sent_at_check CHECK ((sent_at ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'::text)),
    CONSTRAINT report_messages_signature_check CHECK (((length(signature) >= 1) AND (length(signature) <= 200)))
);

ALTER TABLE ONLY tipline.report_messages FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.report_messages OWNER TO tipline_owner;

CREATE TABLE tipline.reports (
    id uuid NOT NULL,
    operative_id uuid NOT NULL,
    device_id uuid NOT NULL,
    sent_at text NOT NULL,
    received_at timestamp with time zone NOT NULL,
    directory_version integer NOT NULL,
    ciphertext bytea NOT NULL,
    ciphertext_sha256 text NOT NULL,
    signature text NOT NULL,
    receipt text NOT NULL,
    status text DEFAULT 'new'::text NOT NULL,
    priority smallint DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone,
    ciphertext_shredded_at timestamp with time zone,
    CONSTRAINT reports_ciphertext_sha256_check CHECK ((ciphertext_sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT reports_directory_version_check CHECK ((directory_version >= 1)),
    CONSTRAINT reports_priority_check CHECK (((priority >= 0) AND (priority <= 3))),
    CONSTRAINT reports_receipt_check CHECK ((receipt ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT reports_sent_at_check CHECK ((sent_at ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'::text)),
    CONSTRAINT reports_shredded_is_empty CHECK (((ciphertext_shredded_at IS NULL) OR (octet_length(ciphertext) = 0))),
    CONSTRAINT reports_signature_check CHECK (((length(signature) >= 1) AND (length(signature) <= 200))),
    CONSTRAINT reports_status_check CHECK ((status = ANY (ARRAY['new'::text, 'in_review'::text, 'verified'::text, 'rejected'::text, 'duplicate'::text, 'needs_info'::text])))
);

ALTER TABLE ONLY tipline.reports FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.reports OWNER TO tipline_owner;

CREATE TABLE tipline.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schema_migrations_checksum_check CHECK ((checksum ~ '^[0-9a-f]{64}$'::text))
);

ALTER TABLE tipline.schema_migrations OWNER TO tipline_owner;

CREATE TABLE tipline.sessions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    token_hash bytea NOT NULL,
    account_id uuid NOT NULL,
    device_id uuid NOT NULL,
    duress boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    idle_timeout interval NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    ended_at timestamp with time zone,
    CONSTRAINT sessions_check CHECK ((expires_at > created_at)),
    CONSTRAINT sessions_idle_timeout_check CHECK ((idle_timeout > '00:00:00'::interval)),
    CONSTRAINT sessions_token_hash_check CHECK ((octet_length(token_hash) = 32))
);

ALTER TABLE ONLY tipline.sessions FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.sessions OWNER TO tipline_owner;

CREATE TABLE tipline.share_access_failures (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    officer_id uuid NOT NULL,
    share_id uuid,
    failed_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY tipline.share_access_failures FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.share_access_failures OWNER TO tipline_owner;

CREATE TABLE tipline.share_accesses (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    share_id uuid NOT NULL,
    lead_id uuid NOT NULL,
    officer_id uuid NOT NULL,
    accessed_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY tipline.share_accesses FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.share_accesses OWNER TO tipline_owner;

CREATE TABLE tipline.share_acknowledgements (
    share_id uuid NOT NULL,
    officer_id uuid NOT NULL,
    acknowledged_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE ONLY tipline.share_acknowledgements FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.share_acknowledgements OWNER TO tipline_owner;

CREATE TABLE tipline.source_throttle (
    source_key bytea NOT NULL,
    window_start timestamp with time zone NOT NULL,
    attempts integer NOT NULL,
    CONSTRAINT source_throttle_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT source_throttle_source_key_check CHECK ((octet_length(source_key) = 32))
);

ALTER TABLE ONLY tipline.source_throttle FORCE ROW LEVEL SECURITY;

ALTER TABLE tipline.source_throttle OWNER TO tipline_owner;

ALTER TABLE ONLY tipline.accounts
    ADD CONSTRAINT accounts_handle_key UNIQUE (handle);

ALTER TABLE ONLY tipline.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.attachment_custody
    ADD CONSTRAINT attachment_custody_audit_event_id_key UNIQUE (audit_event_id);

ALTER TABLE ONLY tipline.attachment_custody
    ADD CONSTRAINT attachment_custody_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.attachments
    ADD CONSTRAINT attachments_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.attachments
    ADD CONSTRAINT attachments_storage_key_key UNIQUE (storage_key);

ALTER TABLE ONLY tipline.audit_chain
    ADD CONSTRAINT audit_chain_event_id_key UNIQUE (event_id);

ALTER TABLE ONLY tipline.audit_chain
    ADD CONSTRAINT audit_chain_pkey PRIMARY KEY ("position");

ALTER TABLE ONLY tipline.audit_checkpoints
    ADD CONSTRAINT audit_checkpoints_pkey PRIMARY KEY ("position");

ALTER TABLE ONLY tipline.audit_events
    ADD CONSTRAINT audit_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.audit_seal_horizon
    ADD CONSTRAINT audit_seal_horizon_pkey PRIMARY KEY (singleton);

ALTER TABLE ONLY tipline.devices
    ADD CONSTRAINT devices_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.dpop_replay
    ADD CONSTRAINT dpop_replay_pkey PRIMARY KEY (jti_hash);

ALTER TABLE ONLY tipline.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.evidence_decoys
    ADD CONSTRAINT evidence_decoys_pkey PRIMARY KEY (account_id, attachment_id);

ALTER TABLE ONLY tipline.invites
    ADD CONSTRAINT invites_code_hash_key UNIQUE (code_hash);

ALTER TABLE ONLY tipline.invites
    ADD CONSTRAINT invites_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.key_directories
    ADD CONSTRAINT key_directories_pkey PRIMARY KEY (version);

ALTER TABLE ONLY tipline.lead_holds
    ADD CONSTRAINT lead_holds_pkey PRIMARY KEY (lead_id);

ALTER TABLE ONLY tipline.lead_outcomes
    ADD CONSTRAINT lead_outcomes_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.lead_reports
    ADD CONSTRAINT lead_reports_pkey PRIMARY KEY (lead_id, report_id);

ALTER TABLE ONLY tipline.lead_shares
    ADD CONSTRAINT lead_shares_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.lead_shares
    ADD CONSTRAINT lead_shares_trace_digest_key UNIQUE (trace_digest);

ALTER TABLE ONLY tipline.leads
    ADD CONSTRAINT leads_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.login_throttle
    ADD CONSTRAINT login_throttle_pkey PRIMARY KEY (subject_key);

ALTER TABLE ONLY tipline.message_reads
    ADD CONSTRAINT message_reads_pkey PRIMARY KEY (message_id, account_id);

ALTER TABLE ONLY tipline.officer_alerts
    ADD CONSTRAINT officer_alerts_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.officers
    ADD CONSTRAINT officers_pkey PRIMARY KEY (account_id);

ALTER TABLE ONLY tipline.report_messages
    ADD CONSTRAINT report_messages_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.reports
    ADD CONSTRAINT reports_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY tipline.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.sessions
    ADD CONSTRAINT sessions_token_hash_key UNIQUE (token_hash);

ALTER TABLE ONLY tipline.share_access_failures
    ADD CONSTRAINT share_access_failures_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.share_accesses
    ADD CONSTRAINT share_accesses_pkey PRIMARY KEY (id);

ALTER TABLE ONLY tipline.share_acknowledgements
    ADD CONSTRAINT share_acknowledgements_pkey PRIMARY KEY (share_id);

ALTER TABLE ONLY tipline.source_throttle
    ADD CONSTRAINT source_throttle_pkey PRIMARY KEY (source_key, window_start);

CREATE INDEX attachment_custody_attachment_idx ON tipline.attachment_custody USING btree (attachment_id, id);

CREATE INDEX attachments_expiry_idx ON tipline.attachments USING btree (expires_at) WHERE (status = ANY (ARRAY['uploading'::text, 'finalizing'::text]));

CREATE INDEX attachments_owner_idx ON tipline.attachments USING btree (owner_id, created_at);

CREATE INDEX attachments_report_idx ON tipline.attachments USING btree (report_id) WHERE (report_id IS NOT NULL);

CREATE INDEX audit_events_action_idx ON tipline.audit_events USING btree (action, id);

CREATE INDEX audit_events_actor_idx ON tipline.audit_events USING btree (actor_id, id) WHERE (actor_id IS NOT NULL);

CREATE INDEX audit_events_xact_idx ON tipline.audit_events USING btree (xact);

CREATE INDEX devices_account_idx ON tipline.devices USING btree (account_id);

CREATE UNIQUE INDEX devices_live_thumbprint_idx ON tipline.devices USING btree (thumbprint) WHERE (revoked_at IS NULL);

CREATE INDEX dpop_replay_expiry_idx ON tipline.dpop_replay USING btree (expires_at);

CREATE INDEX events_audience_account_idx ON tipline.events USING btree (audience_account, id) WHERE (audience_account IS NOT NULL);

CREATE INDEX events_audience_role_idx ON tipline.events USING btree (audience_role, id) WHERE (audience_role IS NOT NULL);

CREATE INDEX evidence_decoys_expiry_idx ON tipline.evidence_decoys USING btree (expires_at) WHERE (status = 'uploading'::text);

CREATE INDEX evidence_decoys_recent_idx ON tipline.evidence_decoys USING btree (account_id, touched_at DESC);

CREATE INDEX lead_outcomes_lead_idx ON tipline.lead_outcomes USING btree (lead_id);

CREATE INDEX lead_reports_report_idx ON tipline.lead_reports USING btree (report_id);

CREATE INDEX lead_shares_lead_idx ON tipline.lead_shares USING btree (lead_id);

CREATE INDEX lead_shares_officer_idx ON tipline.lead_shares USING btree (officer_id, expires_at);

CREATE INDEX officer_alerts_officer_idx ON tipline.officer_alerts USING btree (officer_id, kind, raised_at);

CREATE INDEX report_messages_thread_idx ON tipline.report_messages USING btree (report_id, received_at, id);

CREATE INDEX reports_operative_idx ON tipline.reports USING btree (operative_id, received_at DESC, id DESC);

CREATE INDEX reports_queue_idx ON tipline.reports USING btree (received_at DESC, id DESC);

CREATE INDEX reports_retention_idx ON tipline.reports USING btree (updated_at) WHERE ((status = 'rejected'::text) AND (ciphertext_shredded_at IS NULL));

CREATE INDEX reports_status_queue_idx ON tipline.reports USING btree (status, received_at DESC, id DESC);

CREATE INDEX sessions_account_idx ON tipline.sessions USING btree (account_id) WHERE (ended_at IS NULL);

CREATE INDEX sessions_device_idx ON tipline.sessions USING btree (device_id) WHERE (ended_at IS NULL);

CREATE INDEX share_access_failures_officer_idx ON tipline.share_access_failures USING btree (officer_id, failed_at);

CREATE INDEX share_accesses_lead_idx ON tipline.share_accesses USING btree (lead_id, accessed_at);

CREATE INDEX share_accesses_officer_idx ON tipline.share_accesses USING btree (officer_id, accessed_at);

CREATE TRIGGER accounts_guard_update BEFORE UPDATE ON tipline.accounts FOR EACH ROW EXECUTE FUNCTION tipline.accounts_guard_update();

CREATE TRIGGER attachment_custody_append_only BEFORE DELETE OR UPDATE ON tipline.attachment_custody FOR EACH ROW EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER attachment_custody_no_truncate BEFORE TRUNCATE ON tipline.attachment_custody FOR EACH STATEMENT EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER attachments_guard_update BEFORE UPDATE ON tipline.attachments FOR EACH ROW EXECUTE FUNCTION tipline.attachments_guard_update();

CREATE TRIGGER audit_chain_append_only BEFORE DELETE OR UPDATE ON tipline.audit_chain FOR EACH ROW EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER audit_chain_check_link BEFORE INSERT ON tipline.audit_chain FOR EACH ROW EXECUTE FUNCTION tipline.audit_chain_check_link();

CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON tipline.audit_chain FOR EACH STATEMENT EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER audit_checkpoints_append_only BEFORE DELETE OR UPDATE ON tipline.audit_checkpoints FOR EACH ROW EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON tipline.audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER audit_events_append_only BEFORE DELETE OR UPDATE ON tipline.audit_events FOR EACH ROW EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON tipline.audit_events FOR EACH STATEMENT EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER audit_events_stamp BEFORE INSERT ON tipline.audit_events FOR EACH ROW EXECUTE FUNCTION tipline.audit_events_stamp();

CREATE TRIGGER audit_seal_horizon_forward BEFORE UPDATE ON tipline.audit_seal_horizon FOR EACH ROW EXECUTE FUNCTION tipline.audit_seal_horizon_forward();

CREATE TRIGGER devices_one_way BEFORE UPDATE ON tipline.devices FOR EACH ROW EXECUTE FUNCTION tipline.devices_refuse_unrevoke();

CREATE TRIGGER events_stamp BEFORE INSERT ON tipline.events FOR EACH ROW EXECUTE FUNCTION tipline.events_stamp();

CREATE TRIGGER key_directories_append_only BEFORE DELETE OR UPDATE ON tipline.key_directories FOR EACH ROW EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER key_directories_no_truncate BEFORE TRUNCATE ON tipline.key_directories FOR EACH STATEMENT EXECUTE FUNCTION tipline.audit_refuse_change();

CREATE TRIGGER key_directories_only_forward BEFORE INSERT ON tipline.key_directories FOR EACH ROW EXECUTE FUNCTION tipline.key_directories_only_forward();

CREATE TRIGGER lead_reports_only_verified BEFORE INSERT ON tipline.lead_reports FOR EACH ROW EXECUTE FUNCTION tipline.lead_reports_only_verified();

CREATE TRIGGER lead_shares_guard_update BEFORE UPDATE ON tipline.lead_shares FOR EACH ROW EXECUTE FUNCTION tipline.lead_shares_guard_update();

CREATE TRIGGER leads_guard_update BEFORE UPDATE ON tipline.leads FOR EACH ROW EXECUTE FUNCTION tipline.leads_guard_update();

CREATE TRIGGER officers_guard_update BEFORE UPDATE ON tipline.officers FOR EACH ROW EXECUTE FUNCTION tipline.officers_guard_update();

CREATE TRIGGER reports_guard_shred BEFORE UPDATE ON tipline.reports FOR EACH ROW EXECUTE FUNCTION tipline.reports_guard_shred();

CREATE TRIGGER sessions_one_way BEFORE UPDATE ON tipline.sessions FOR EACH ROW EXECUTE FUNCTION tipline.sessions_refuse_revive();

ALTER TABLE ONLY tipline.attachment_custody
    ADD CONSTRAINT attachment_custody_attachment_id_fkey FOREIGN KEY (attachment_id) REFERENCES tipline.attachments(id);

ALTER TABLE ONLY tipline.attachment_custody
    ADD CONSTRAINT attachment_custody_audit_event_id_fkey FOREIGN KEY (audit_event_id) REFERENCES tipline.audit_events(id);

ALTER TABLE ONLY tipline.attachments
    ADD CONSTRAINT attachments_device_id_fkey FOREIGN KEY (device_id) REFERENCES tipline.devices(id);

ALTER TABLE ONLY tipline.attachments
    ADD CONSTRAINT attachments_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.attachments
    ADD CONSTRAINT attachments_report_id_fkey FOREIGN KEY (report_id) REFERENCES tipline.reports(id);

ALTER TABLE ONLY tipline.audit_chain
    ADD CONSTRAINT audit_chain_event_id_fkey FOREIGN KEY (event_id) REFERENCES tipline.audit_events(id);

ALTER TABLE ONLY tipline.audit_checkpoints
    ADD CONSTRAINT audit_checkpoints_position_fkey FOREIGN KEY ("position") REFERENCES tipline.audit_chain("position");

ALTER TABLE ONLY tipline.devices
    ADD CONSTRAINT devices_account_id_fkey FOREIGN KEY (account_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.evidence_decoys
    ADD CONSTRAINT evidence_decoys_account_id_fkey FOREIGN KEY (account_id) REFERENCES tipline.accounts(id) ON DELETE CASCADE;

ALTER TABLE ONLY tipline.invites
    ADD CONSTRAINT invites_account_id_fkey FOREIGN KEY (account_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.invites
    ADD CONSTRAINT invites_created_by_fkey FOREIGN KEY (created_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.key_directories
    ADD CONSTRAINT key_directories_published_by_fkey FOREIGN KEY (published_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.lead_holds
    ADD CONSTRAINT lead_holds_lead_id_fkey FOREIGN KEY (lead_id) REFERENCES tipline.leads(id);

ALTER TABLE ONLY tipline.lead_holds
    ADD CONSTRAINT lead_holds_placed_by_fkey FOREIGN KEY (placed_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.lead_outcomes
    ADD CONSTRAINT lead_outcomes_lead_id_fkey FOREIGN KEY (lead_id) REFERENCES tipline.leads(id);

ALTER TABLE ONLY tipline.lead_outcomes
    ADD CONSTRAINT lead_outcomes_officer_id_fkey FOREIGN KEY (officer_id) REFERENCES tipline.officers(account_id);

ALTER TABLE ONLY tipline.lead_reports
    ADD CONSTRAINT lead_reports_lead_id_fkey FOREIGN KEY (lead_id) REFERENCES tipline.leads(id);

ALTER TABLE ONLY tipline.lead_reports
    ADD CONSTRAINT lead_reports_report_id_fkey FOREIGN KEY (report_id) REFERENCES tipline.reports(id);

ALTER TABLE ONLY tipline.lead_shares
    ADD CONSTRAINT lead_shares_approved_by_fkey FOREIGN KEY (approved_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.lead_shares
    ADD CONSTRAINT lead_shares_created_by_fkey FOREIGN KEY (created_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.lead_shares
    ADD CONSTRAINT lead_shares_lead_id_fkey FOREIGN KEY (lead_id) REFERENCES tipline.leads(id);

ALTER TABLE ONLY tipline.lead_shares
    ADD CONSTRAINT lead_shares_officer_id_fkey FOREIGN KEY (officer_id) REFERENCES tipline.officers(account_id);

ALTER TABLE ONLY tipline.lead_shares
    ADD CONSTRAINT lead_shares_revoked_by_fkey FOREIGN KEY (revoked_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.leads
    ADD CONSTRAINT leads_created_by_fkey FOREIGN KEY (created_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.message_reads
    ADD CONSTRAINT message_reads_account_id_fkey FOREIGN KEY (account_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.message_reads
    ADD CONSTRAINT message_reads_message_id_fkey FOREIGN KEY (message_id) REFERENCES tipline.report_messages(id);

ALTER TABLE ONLY tipline.officer_alerts
    ADD CONSTRAINT officer_alerts_officer_id_fkey FOREIGN KEY (officer_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.officers
    ADD CONSTRAINT officers_account_id_fkey FOREIGN KEY (account_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.officers
    ADD CONSTRAINT officers_approved_by_fkey FOREIGN KEY (approved_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.officers
    ADD CONSTRAINT officers_proposed_by_fkey FOREIGN KEY (proposed_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.officers
    ADD CONSTRAINT officers_status_changed_by_fkey FOREIGN KEY (status_changed_by) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.report_messages
    ADD CONSTRAINT report_messages_author_id_fkey FOREIGN KEY (author_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.report_messages
    ADD CONSTRAINT report_messages_device_id_fkey FOREIGN KEY (device_id) REFERENCES tipline.devices(id);

ALTER TABLE ONLY tipline.report_messages
    ADD CONSTRAINT report_messages_report_id_fkey FOREIGN KEY (report_id) REFERENCES tipline.reports(id);

ALTER TABLE ONLY tipline.reports
    ADD CONSTRAINT reports_device_id_fkey FOREIGN KEY (device_id) REFERENCES tipline.devices(id);

ALTER TABLE ONLY tipline.reports
    ADD CONSTRAINT reports_operative_id_fkey FOREIGN KEY (operative_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.sessions
    ADD CONSTRAINT sessions_account_id_fkey FOREIGN KEY (account_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.sessions
    ADD CONSTRAINT sessions_device_id_fkey FOREIGN KEY (device_id) REFERENCES tipline.devices(id);

ALTER TABLE ONLY tipline.share_access_failures
    ADD CONSTRAINT share_access_failures_officer_id_fkey FOREIGN KEY (officer_id) REFERENCES tipline.accounts(id);

ALTER TABLE ONLY tipline.share_accesses
    ADD CONSTRAINT share_accesses_lead_id_fkey FOREIGN KEY (lead_id) REFERENCES tipline.leads(id);

ALTER TABLE ONLY tipline.share_accesses
    ADD CONSTRAINT share_accesses_officer_id_fkey FOREIGN KEY (officer_id) REFERENCES tipline.officers(account_id);

ALTER TABLE ONLY tipline.share_accesses
    ADD CONSTRAINT share_accesses_share_id_fkey FOREIGN KEY (share_id) REFERENCES tipline.lead_shares(id);

ALTER TABLE ONLY tipline.share_acknowledgements
    ADD CONSTRAINT share_acknowledgements_officer_id_fkey FOREIGN KEY (officer_id) REFERENCES tipline.officers(account_id);

ALTER TABLE ONLY tipline.share_acknowledgements
    ADD CONSTRAINT share_acknowledgements_share_id_fkey FOREIGN KEY (share_id) REFERENCES tipline.lead_shares(id);

ALTER TABLE tipline.accounts ENABLE ROW LEVEL SECURITY;

CREATE POLICY accounts_create ON tipline.accounts FOR INSERT WITH CHECK ((tipline.current_app_role() = 'authenticator'::text));

CREATE POLICY accounts_read ON tipline.accounts FOR SELECT USING (((id = tipline.current_account_id()) OR (tipline.current_app_role() = ANY (ARRAY['investigator'::text, 'admin'::text, 'authenticator'::text]))));

CREATE POLICY accounts_write ON tipline.accounts FOR UPDATE USING (((NOT tipline.current_is_duress()) AND ((id = tipline.current_account_id()) OR (tipline.current_app_role() = 'authenticator'::text) OR ((tipline.current_app_role() = 'admin'::text) AND (role <> 'investigator'::text)))));

ALTER TABLE tipline.attachment_custody ENABLE ROW LEVEL SECURITY;

CREATE POLICY attachment_custody_append ON tipline.attachment_custody FOR INSERT WITH CHECK (((NOT (actor_id IS DISTINCT FROM tipline.current_account_id())) AND (NOT (actor_role IS DISTINCT FROM tipline.current_app_role())) AND ((tipline.current_app_role() = 'evidence_sweeper'::text) OR (NOT tipline.current_is_duress()))));

CREATE POLICY attachment_custody_read ON tipline.attachment_custody FOR SELECT USING (((tipline.current_app_role() = 'evidence_sweeper'::text) OR ((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()))));

ALTER TABLE tipline.attachments ENABLE ROW LEVEL SECURITY;

CREATE POLICY attachments_create ON tipline.attachments FOR INSERT WITH CHECK (((NOT tipline.current_is_duress()) AND (tipline.current_app_role() = ANY (ARRAY['operative'::text, 'investigator'::text])) AND (owner_id = tipline.current_account_id()) AND (owner_role = tipline.current_app_role())));

CREATE POLICY attachments_progress ON tipline.attachments FOR UPDATE USING (((NOT tipline.current_is_duress()) AND (owner_id = tipline.current_account_id()))) WITH CHECK ((owner_id = tipline.current_account_id()));

CREATE POLICY attachments_read ON tipline.attachments FOR SELECT USING (((tipline.current_app_role() = 'evidence_sweeper'::text) OR ((NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR (owner_id = tipline.current_account_id())))));

CREATE POLICY attachments_retention_read ON tipline.attachments FOR SELECT USING ((tipline.current_app_role() = 'retention'::text));

CREATE POLICY attachments_retention_shred ON tipline.attachments FOR UPDATE USING (((tipline.current_app_role() = 'retention'::text) AND (status = 'complete'::text))) WITH CHECK (((tipline.current_app_role() = 'retention'::text) AND (status = 'deleted'::text)));

CREATE POLICY attachments_sweep ON tipline.attachments FOR UPDATE USING (((tipline.current_app_role() = 'evidence_sweeper'::text) AND (status = ANY (ARRAY['uploading'::text, 'finalizing'::text])))) WITH CHECK (((tipline.current_app_role() = 'evidence_sweeper'::text) AND (status = 'deleted'::text)));

ALTER TABLE tipline.audit_chain ENABLE ROW LEVEL SECURITY;

CREATE POLICY audit_chain_append ON tipline.audit_chain FOR INSERT WITH CHECK ((tipline.current_app_role() = 'auditor'::text));

CREATE POLICY audit_chain_read ON tipline.audit_chain FOR SELECT USING ((tipline.current_app_role() = ANY (ARRAY['investigator'::text, 'admin'::text, 'auditor'::text])));

ALTER TABLE tipline.audit_checkpoints ENABLE ROW LEVEL SECURITY;

CREATE POLICY audit_checkpoints_append ON tipline.audit_checkpoints FOR INSERT WITH CHECK ((tipline.current_app_role() = 'auditor'::text));

CREATE POLICY audit_checkpoints_read ON tipline.audit_checkpoints FOR SELECT USING ((tipline.current_app_role() = ANY (ARRAY['investigator'::text, 'admin'::text, 'auditor'::text])));

ALTER TABLE tipline.audit_events ENABLE ROW LEVEL SECURITY;

CREATE POLICY audit_events_append ON tipline.audit_events FOR INSERT WITH CHECK (((tipline.current_app_role() = ANY (ARRAY['authenticator'::text, 'auditor'::text])) OR ((NOT (actor_id IS DISTINCT FROM tipline.current_account_id())) AND (NOT (actor_role IS DISTINCT FROM tipline.current_app_role())))));

CREATE POLICY audit_events_read ON tipline.audit_events FOR SELECT USING ((tipline.current_app_role() = ANY (ARRAY['investigator'::text, 'admin'::text, 'auditor'::text])));

ALTER TABLE tipline.audit_seal_horizon ENABLE ROW LEVEL SECURITY;

CREATE POLICY audit_seal_horizon_sealer ON tipline.audit_seal_horizon USING ((tipline.current_app_role() = 'auditor'::text)) WITH CHECK ((tipline.current_app_role() = 'auditor'::text));

ALTER TABLE tipline.devices ENABLE ROW LEVEL SECURITY;

CREATE POLICY devices_create ON tipline.devices FOR INSERT WITH CHECK ((tipline.current_app_role() = 'authenticator'::text));

CREATE POLICY devices_read ON tipline.devices FOR SELECT USING (((account_id = tipline.current_account_id()) OR (tipline.current_app_role() = ANY (ARRAY['investigator'::text, 'admin'::text, 'authenticator'::text]))));

CREATE POLICY devices_write ON tipline.devices FOR UPDATE USING (((NOT tipline.current_is_duress()) AND ((account_id = tipline.current_account_id()) OR (tipline.current_app_role() = ANY (ARRAY['admin'::text, 'authenticator'::text])))));

ALTER TABLE tipline.dpop_replay ENABLE ROW LEVEL SECURITY;

CREATE POLICY dpop_replay_authenticator ON tipline.dpop_replay USING ((tipline.current_app_role() = 'authenticator'::text)) WITH CHECK ((tipline.current_app_role() = 'authenticator'::text));

ALTER TABLE tipline.events ENABLE ROW LEVEL SECURITY;

CREATE POLICY events_publish ON tipline.events FOR INSERT WITH CHECK (((tipline.current_account_id() IS NOT NULL) AND (NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR (audience_role = 'investigator'::text) OR (audience_account = tipline.current_account_id()))));

CREATE POLICY events_read ON tipline.events FOR SELECT USING (((NOT tipline.current_is_duress()) AND ((audience_account = tipline.current_account_id()) OR (audience_role = tipline.current_app_role()))));

ALTER TABLE tipline.evidence_decoys ENABLE ROW LEVEL SECURITY;

CREATE POLICY evidence_decoys_own ON tipline.evidence_decoys USING ((tipline.current_is_duress() AND (account_id = tipline.current_account_id()))) WITH CHECK ((tipline.current_is_duress() AND (account_id = tipline.current_account_id())));

CREATE POLICY evidence_decoys_sweep ON tipline.evidence_decoys FOR UPDATE USING (((tipline.current_app_role() = 'evidence_sweeper'::text) AND (status = 'uploading'::text) AND (expires_at <= now()))) WITH CHECK (((tipline.current_app_role() = 'evidence_sweeper'::text) AND (status = 'deleted'::text)));

CREATE POLICY evidence_decoys_sweep_read ON tipline.evidence_decoys FOR SELECT USING (((tipline.current_app_role() = 'evidence_sweeper'::text) AND (status = ANY (ARRAY['uploading'::text, 'deleted'::text])) AND (expires_at <= now())));

ALTER TABLE tipline.invites ENABLE ROW LEVEL SECURITY;

CREATE POLICY invites_create ON tipline.invites FOR INSERT WITH CHECK (((tipline.current_app_role() = 'authenticator'::text) OR ((created_by = tipline.current_account_id()) AND (NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR ((tipline.current_app_role() = 'admin'::text) AND (role <> 'investigator'::text))))));

CREATE POLICY invites_read ON tipline.invites FOR SELECT USING (((created_by = tipline.current_account_id()) OR (tipline.current_app_role() = ANY (ARRAY['admin'::text, 'authenticator'::text]))));

CREATE POLICY invites_redeem ON tipline.invites FOR UPDATE USING ((tipline.current_app_role() = 'authenticator'::text));

ALTER TABLE tipline.key_directories ENABLE ROW LEVEL SECURITY;

CREATE POLICY key_directories_publish ON tipline.key_directories FOR INSERT WITH CHECK (((tipline.current_app_role() = 'investigator'::text) AND (published_by = tipline.current_account_id()) AND (NOT tipline.current_is_duress())));

CREATE POLICY key_directories_read ON tipline.key_directories FOR SELECT USING (((tipline.current_account_id() IS NOT NULL) OR (tipline.current_app_role() = 'authenticator'::text)));

ALTER TABLE tipline.lead_holds ENABLE ROW LEVEL SECURITY;

CREATE POLICY lead_holds_place ON tipline.lead_holds FOR INSERT WITH CHECK (((tipline.current_app_role() = 'retention'::text) OR ((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()) AND (placed_by = tipline.current_account_id()))));

CREATE POLICY lead_holds_read ON tipline.lead_holds FOR SELECT USING (((tipline.current_app_role() = 'retention'::text) OR ((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()))));

CREATE POLICY lead_holds_release ON tipline.lead_holds FOR DELETE USING (((tipline.current_app_role() = 'retention'::text) OR ((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()))));

ALTER TABLE tipline.lead_outcomes ENABLE ROW LEVEL SECURITY;

CREATE POLICY lead_outcomes_read ON tipline.lead_outcomes FOR SELECT USING (((NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR (officer_id = tipline.current_account_id()))));

CREATE POLICY lead_outcomes_report ON tipline.lead_outcomes FOR INSERT WITH CHECK (((tipline.current_app_role() = 'officer'::text) AND (officer_id = tipline.current_account_id()) AND (EXISTS ( SELECT
   FROM tipline.lead_shares s
  WHERE ((s.lead_id = lead_outcomes.lead_id) AND (s.officer_id = tipline.current_account_id()))))));

ALTER TABLE tipline.lead_reports ENABLE ROW LEVEL SECURITY;

CREATE POLICY lead_reports_investigators ON tipline.lead_reports USING (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()))) WITH CHECK (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress())));

CREATE POLICY lead_reports_retention_read ON tipline.lead_reports FOR SELECT USING ((tipline.current_app_role() = 'retention'::text));

ALTER TABLE tipline.lead_shares ENABLE ROW LEVEL SECURITY;

CREATE POLICY lead_shares_change ON tipline.lead_shares FOR UPDATE USING (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress())));

CREATE POLICY lead_shares_create ON tipline.lead_shares FOR INSERT WITH CHECK (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()) AND (created_by = tipline.current_account_id()) AND (approved_by IS NULL) AND (revoked_by IS NULL)));

CREATE POLICY lead_shares_read ON tipline.lead_shares FOR SELECT USING (((NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR ((tipline.current_app_role() = 'officer'::text) AND (officer_id = tipline.current_account_id()) AND tipline.share_is_open(officer_id, requires_approval, approved_at, revoked_at, not_before, expires_at)))));

ALTER TABLE tipline.leads ENABLE ROW LEVEL SECURITY;

CREATE POLICY leads_change ON tipline.leads FOR UPDATE USING (((NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR ((tipline.current_app_role() = 'officer'::text) AND (EXISTS ( SELECT
   FROM tipline.lead_shares s
  WHERE (s.lead_id = leads.id)))))));

CREATE POLICY leads_create ON tipline.leads FOR INSERT WITH CHECK (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()) AND (created_by = tipline.current_account_id()) AND (status = 'open'::text)));

CREATE POLICY leads_read ON tipline.leads FOR SELECT USING (((NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR ((tipline.current_app_role() = 'officer'::text) AND (EXISTS ( SELECT
   FROM tipline.lead_shares s
  WHERE (s.lead_id = leads.id)))))));

CREATE POLICY leads_retention_read ON tipline.leads FOR SELECT USING ((tipline.current_app_role() = 'retention'::text));

ALTER TABLE tipline.login_throttle ENABLE ROW LEVEL SECURITY;

CREATE POLICY login_throttle_authenticator ON tipline.login_throttle USING ((tipline.current_app_role() = ANY (ARRAY['authenticator'::text, 'admin'::text]))) WITH CHECK ((tipline.current_app_role() = ANY (ARRAY['authenticator'::text, 'admin'::text])));

CREATE POLICY login_throttle_retention ON tipline.login_throttle USING ((tipline.current_app_role() = 'retention'::text)) WITH CHECK (false);

ALTER TABLE tipline.message_reads ENABLE ROW LEVEL SECURITY;

CREATE POLICY message_reads_own ON tipline.message_reads USING (((account_id = tipline.current_account_id()) AND (NOT tipline.current_is_duress()))) WITH CHECK (((account_id = tipline.current_account_id()) AND (NOT tipline.current_is_duress())));

ALTER TABLE tipline.officer_alerts ENABLE ROW LEVEL SECURITY;

CREATE POLICY officer_alerts_dedupe ON tipline.officer_alerts FOR SELECT TO tipline_owner USING (true);

CREATE POLICY officer_alerts_raise ON tipline.officer_alerts FOR INSERT WITH CHECK (((tipline.current_app_role() = 'officer'::text) AND (officer_id = tipline.current_account_id())));

CREATE POLICY officer_alerts_read ON tipline.officer_alerts FOR SELECT USING (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress())));

ALTER TABLE tipline.officers ENABLE ROW LEVEL SECURITY;

CREATE POLICY officers_change ON tipline.officers FOR UPDATE USING (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress())));

CREATE POLICY officers_propose ON tipline.officers FOR INSERT WITH CHECK (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()) AND (proposed_by = tipline.current_account_id()) AND (status = 'proposed'::text) AND (approved_by IS NULL)));

CREATE POLICY officers_read ON tipline.officers FOR SELECT USING (((NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR ((tipline.current_app_role() = 'officer'::text) AND (account_id = tipline.current_account_id())))));

ALTER TABLE tipline.report_messages ENABLE ROW LEVEL SECURITY;

CREATE POLICY report_messages_read ON tipline.report_messages FOR SELECT USING (((NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR ((tipline.current_app_role() = 'operative'::text) AND (EXISTS ( SELECT
   FROM tipline.reports r
  WHERE ((r.id = report_messages.report_id) AND (r.operative_id = tipline.current_account_id()))))))));

CREATE POLICY report_messages_write ON tipline.report_messages FOR INSERT WITH CHECK (((NOT tipline.current_is_duress()) AND (author_id = tipline.current_account_id()) AND (author_role = tipline.current_app_role()) AND ((tipline.current_app_role() = 'investigator'::text) OR ((tipline.current_app_role() = 'operative'::text) AND (EXISTS ( SELECT
   FROM tipline.reports r
  WHERE ((r.id = report_messages.report_id) AND (r.operative_id = tipline.current_account_id()))))))));

ALTER TABLE tipline.reports ENABLE ROW LEVEL SECURITY;

CREATE POLICY reports_read ON tipline.reports FOR SELECT USING (((NOT tipline.current_is_duress()) AND
CASE tipline.current_app_role()
    WHEN 'investigator'::text THEN true
    WHEN 'operative'::text THEN (operative_id = tipline.current_account_id())
    ELSE false
END));

CREATE POLICY reports_retention_read ON tipline.reports FOR SELECT USING (((tipline.current_app_role() = 'retention'::text) AND (status = 'rejected'::text)));

CREATE POLICY reports_retention_shred ON tipline.reports FOR UPDATE USING (((tipline.current_app_role() = 'retention'::text) AND (status = 'rejected'::text) AND (ciphertext_shredded_at IS NULL))) WITH CHECK ((tipline.current_app_role() = 'retention'::text));

CREATE POLICY reports_submit ON tipline.reports FOR INSERT WITH CHECK (((NOT tipline.current_is_duress()) AND (tipline.current_app_role() = 'operative'::text) AND (operative_id = tipline.current_account_id())));

CREATE POLICY reports_triage ON tipline.reports FOR UPDATE USING (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress())));

ALTER TABLE tipline.sessions ENABLE ROW LEVEL SECURITY;

CREATE POLICY sessions_create ON tipline.sessions FOR INSERT WITH CHECK ((tipline.current_app_role() = 'authenticator'::text));

CREATE POLICY sessions_investigator_vetted_end ON tipline.sessions FOR UPDATE USING (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()) AND (EXISTS ( SELECT
   FROM tipline.officers o
  WHERE (o.account_id = sessions.account_id)))));

CREATE POLICY sessions_investigator_vetted_read ON tipline.sessions FOR SELECT USING (((tipline.current_app_role() = 'investigator'::text) AND (NOT tipline.current_is_duress()) AND (EXISTS ( SELECT
   FROM tipline.officers o
  WHERE (o.account_id = sessions.account_id)))));

CREATE POLICY sessions_read ON tipline.sessions FOR SELECT USING (((account_id = tipline.current_account_id()) OR (tipline.current_app_role() = ANY (ARRAY['admin'::text, 'authenticator'::text]))));

CREATE POLICY sessions_retention_read ON tipline.sessions FOR SELECT USING ((tipline.current_app_role() = 'retention'::text));

CREATE POLICY sessions_retention_sweep ON tipline.sessions FOR DELETE USING ((tipline.current_app_role() = 'retention'::text));

CREATE POLICY sessions_write ON tipline.sessions FOR UPDATE USING (((account_id = tipline.current_account_id()) OR (tipline.current_app_role() = ANY (ARRAY['admin'::text, 'authenticator'::text]))));

ALTER TABLE tipline.share_access_failures ENABLE ROW LEVEL SECURITY;

CREATE POLICY share_access_failures_read ON tipline.share_access_failures FOR SELECT USING (((tipline.current_app_role() = 'investigator'::text) OR (officer_id = tipline.current_account_id())));

CREATE POLICY share_access_failures_record ON tipline.share_access_failures FOR INSERT WITH CHECK (((tipline.current_app_role() = 'officer'::text) AND (officer_id = tipline.current_account_id())));

ALTER TABLE tipline.share_accesses ENABLE ROW LEVEL SECURITY;

CREATE POLICY share_accesses_read ON tipline.share_accesses FOR SELECT USING (((NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR (officer_id = tipline.current_account_id()))));

CREATE POLICY share_accesses_record ON tipline.share_accesses FOR INSERT WITH CHECK (((tipline.current_app_role() = 'officer'::text) AND (officer_id = tipline.current_account_id()) AND (EXISTS ( SELECT
   FROM tipline.lead_shares s
  WHERE ((s.id = share_accesses.share_id) AND (s.lead_id = share_accesses.lead_id) AND (s.officer_id = tipline.current_account_id()))))));

ALTER TABLE tipline.share_acknowledgements ENABLE ROW LEVEL SECURITY;

CREATE POLICY share_acknowledgements_ack ON tipline.share_acknowledgements FOR INSERT WITH CHECK (((tipline.current_app_role() = 'officer'::text) AND (officer_id = tipline.current_account_id()) AND (EXISTS ( SELECT
   FROM tipline.lead_shares s
  WHERE ((s.id = share_acknowledgements.share_id) AND (s.officer_id = tipline.current_account_id()))))));

CREATE POLICY share_acknowledgements_read ON tipline.share_acknowledgements FOR SELECT USING (((NOT tipline.current_is_duress()) AND ((tipline.current_app_role() = 'investigator'::text) OR (officer_id = tipline.current_account_id()))));

ALTER TABLE tipline.source_throttle ENABLE ROW LEVEL SECURITY;

CREATE POLICY source_throttle_authenticator ON tipline.source_throttle USING ((tipline.current_app_role() = 'authenticator'::text)) WITH CHECK ((tipline.current_app_role() = 'authenticator'::text));

GRANT USAGE ON SCHEMA tipline TO tipline_app;

GRANT ALL ON FUNCTION tipline.audit_append(p_actor_id uuid, p_actor_role text, p_action text, p_subject_type text, p_subject_id text, p_detail jsonb) TO tipline_app;

GRANT ALL ON FUNCTION tipline.authenticate_session(p_token_hash bytea, p_thumbprint text, p_jti_hash bytea, p_replay_ttl_s double precision) TO tipline_app;

GRANT ALL ON FUNCTION tipline.current_account_id() TO tipline_app;

GRANT ALL ON FUNCTION tipline.current_app_role() TO tipline_app;

GRANT ALL ON FUNCTION tipline.current_is_duress() TO tipline_app;

GRANT ALL ON FUNCTION tipline.enter_context(p_account_id text, p_role text, p_duress text) TO tipline_app;

GRANT ALL ON FUNCTION tipline.event_session_is_live(p_session_id uuid) TO tipline_app;

GRANT ALL ON FUNCTION tipline.officer_is_cleared(p_officer uuid) TO tipline_app;

GRANT ALL ON FUNCTION tipline.publish_event(p_kind text, p_subject_id uuid, p_report_id uuid, p_audience_account uuid, p_audience_role text) TO tipline_app;

REVOKE ALL ON FUNCTION tipline.raise_officer_alert(p_kind text, p_dedupe_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION tipline.raise_officer_alert(p_kind text, p_dedupe_s double precision) TO tipline_app;

GRANT ALL ON FUNCTION tipline.require_no_context() TO tipline_app;

GRANT ALL ON FUNCTION tipline.share_is_open(p_officer uuid, p_requires_approval boolean, p_approved_at timestamp with time zone, p_revoked_at timestamp with time zone, p_not_before timestamp with time zone, p_expires_at timestamp with time zone) TO tipline_app;

GRANT ALL ON FUNCTION tipline.submit_report(p_account_id uuid, p_role text, p_duress boolean, p_report_id uuid, p_device_id uuid, p_sent_at text, p_received_at timestamp with time zone, p_directory_version integer, p_ciphertext bytea, p_ciphertext_sha256 text, p_signature text, p_receipt text, p_audit_detail jsonb, p_attachment_ids uuid[], p_plaintext_sha256 text[], p_attachment_ciphertext_sha256 text[]) TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.accounts TO tipline_app;

GRANT UPDATE(status) ON TABLE tipline.accounts TO tipline_app;

GRANT UPDATE(password_hash) ON TABLE tipline.accounts TO tipline_app;

GRANT UPDATE(duress_hash) ON TABLE tipline.accounts TO tipline_app;

GRANT UPDATE(totp_seed_sealed) ON TABLE tipline.accounts TO tipline_app;

GRANT UPDATE(totp_last_step) ON TABLE tipline.accounts TO tipline_app;

GRANT UPDATE(age_recipient) ON TABLE tipline.accounts TO tipline_app;

GRANT UPDATE(duress_at) ON TABLE tipline.accounts TO tipline_app;

GRANT UPDATE(locked_at) ON TABLE tipline.accounts TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.attachment_custody TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(storage_state) ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(upload_offset) ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(ciphertext_sha256) ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(status) ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(expires_at) ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(completed_at) ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(lease_id) ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(lease_until) ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(report_id) ON TABLE tipline.attachments TO tipline_app;

GRANT UPDATE(plaintext_sha256) ON TABLE tipline.attachments TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.audit_chain TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.audit_checkpoints TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.audit_events TO tipline_app;

GRANT USAGE ON SEQUENCE tipline.audit_events_id_seq TO tipline_app;

GRANT SELECT ON TABLE tipline.audit_seal_horizon TO tipline_app;

GRANT UPDATE(horizon) ON TABLE tipline.audit_seal_horizon TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.devices TO tipline_app;

GRANT UPDATE(revoked_at) ON TABLE tipline.devices TO tipline_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE tipline.dpop_replay TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.events TO tipline_app;

GRANT USAGE ON SEQUENCE tipline.events_id_seq TO tipline_app;

GRANT SELECT,INSERT,DELETE ON TABLE tipline.evidence_decoys TO tipline_app;

GRANT UPDATE(upload_offset) ON TABLE tipline.evidence_decoys TO tipline_app;

GRANT UPDATE(status) ON TABLE tipline.evidence_decoys TO tipline_app;

GRANT UPDATE(expires_at) ON TABLE tipline.evidence_decoys TO tipline_app;

GRANT UPDATE(touched_at) ON TABLE tipline.evidence_decoys TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.invites TO tipline_app;

GRANT UPDATE(redeemed_at) ON TABLE tipline.invites TO tipline_app;

GRANT UPDATE(account_id) ON TABLE tipline.invites TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.key_directories TO tipline_app;

GRANT SELECT,INSERT,DELETE ON TABLE tipline.lead_holds TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.lead_outcomes TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.lead_reports TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.lead_shares TO tipline_app;

GRANT UPDATE(approved_by) ON TABLE tipline.lead_shares TO tipline_app;

GRANT UPDATE(approved_at) ON TABLE tipline.lead_shares TO tipline_app;

GRANT UPDATE(revoked_by) ON TABLE tipline.lead_shares TO tipline_app;

GRANT UPDATE(revoked_at) ON TABLE tipline.lead_shares TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.leads TO tipline_app;

GRANT UPDATE(status) ON TABLE tipline.leads TO tipline_app;

GRANT UPDATE(updated_at) ON TABLE tipline.leads TO tipline_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE tipline.login_throttle TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.message_reads TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.officer_alerts TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(unit) ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(rank) ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(review_due) ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(status) ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(proposed_by) ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(proposed_at) ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(approved_by) ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(approved_at) ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(status_changed_by) ON TABLE tipline.officers TO tipline_app;

GRANT UPDATE(status_changed_at) ON TABLE tipline.officers TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.report_messages TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.reports TO tipline_app;

GRANT UPDATE(ciphertext) ON TABLE tipline.reports TO tipline_app;

GRANT UPDATE(status) ON TABLE tipline.reports TO tipline_app;

GRANT UPDATE(priority) ON TABLE tipline.reports TO tipline_app;

GRANT UPDATE(updated_at) ON TABLE tipline.reports TO tipline_app;

GRANT UPDATE(ciphertext_shredded_at) ON TABLE tipline.reports TO tipline_app;

GRANT SELECT ON TABLE tipline.schema_migrations TO tipline_app;

GRANT SELECT,INSERT,DELETE ON TABLE tipline.sessions TO tipline_app;

GRANT UPDATE(last_seen_at) ON TABLE tipline.sessions TO tipline_app;

GRANT UPDATE(ended_at) ON TABLE tipline.sessions TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.share_access_failures TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.share_accesses TO tipline_app;

GRANT SELECT,INSERT ON TABLE tipline.share_acknowledgements TO tipline_app;

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE tipline.source_throttle TO tipline_app;
