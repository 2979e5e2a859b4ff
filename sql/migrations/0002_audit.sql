-- The audit log (DESIGN §5, SEC-LOG-03, SEC-LOG-04, SEC-AUTHZ-08).
--
-- audit_events is written by every capability in the same transaction as the action it records.
-- It is append-only twice over: tipline_app holds only INSERT and SELECT, and triggers refuse
-- UPDATE, DELETE and TRUNCATE even from the owner or a superuser who has not first disabled
-- them. A separate sealer appends each event to audit_chain, a SHA-256 hash chain with RFC 6962
-- domain separation, and signs the head into audit_checkpoints; sealing after the fact keeps
-- appends concurrent (no lock on a shared head), and the chain makes any later change visible
-- to `tipline audit verify`.

CREATE FUNCTION audit_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'tipline.% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id     uuid,
    actor_role   text CHECK (actor_role ~ '^[a-z_]{1,32}$'),
    action       text NOT NULL CHECK (action ~ '^[a-z_]{1,32}(\.[a-z_]{1,32}){1,2}$'),
    subject_type text CHECK (subject_type ~ '^[a-z_]{1,32}$'),
    subject_id   text CHECK (length(subject_id) BETWEEN 1 AND 200),
    -- Small, non-secret metadata (ids, counts, status names), never content: a seized
    -- database must not reveal a report through its audit trail. Flat scalars only.
    detail       jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(detail) = 'object')
        CHECK (octet_length(detail::text) <= 2048)
        CHECK (NOT jsonb_path_exists(detail, '$.* ? (@.type() == "object" || @.type() == "array" || @.type() == "null")'))
);

CREATE INDEX audit_events_action_idx ON audit_events (action, id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id) WHERE actor_id IS NOT NULL;

-- The database, not the caller, says when an event happened, and an id can only be one this
-- session just drew from the sequence, so a caller can neither backdate an event nor squat on
-- an id that a later, legitimate event would collide with (which would make that action fail).
CREATE FUNCTION audit_events_stamp() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM currval(pg_get_serial_sequence('tipline.audit_events', 'id')) THEN
        RAISE EXCEPTION 'audit event ids come from the sequence'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.occurred_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_events_stamp BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_stamp();
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- position is the order the sealer sealed in, not the event id: an event whose transaction
-- commits late is sealed late, so appends never wait on each other.
CREATE TABLE audit_chain (
    position   bigint PRIMARY KEY CHECK (position >= 1),
    event_id   bigint NOT NULL UNIQUE REFERENCES audit_events (id),
    entry_hash bytea NOT NULL CHECK (octet_length(entry_hash) = 32),
    chain_hash bytea NOT NULL CHECK (octet_length(chain_hash) = 32),
    sealed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The database checks every link as it is appended, so a faulty or racing sealer cannot fork
-- the chain or leave a gap: chain_hash_i = SHA-256(0x00 || chain_hash_{i-1} || entry_hash_i),
-- chain_hash_0 = 32 zero bytes (RFC 6962 §2.1 leaf prefix). The entry hash itself is checked
-- by the verifier, which holds the canonical encoding.
CREATE FUNCTION audit_chain_check_link() RETURNS trigger
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

CREATE TRIGGER audit_chain_check_link BEFORE INSERT ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_check_link();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- Signed heads (Ed25519). Copies exported to another system let the verifier catch a tail that
-- was cut off or rewritten by someone holding the whole database (Crosby & Wallach 2009).
CREATE TABLE audit_checkpoints (
    position   bigint PRIMARY KEY REFERENCES audit_chain (position),
    chain_hash bytea NOT NULL CHECK (octet_length(chain_hash) = 32),
    signature  bytea NOT NULL CHECK (octet_length(signature) = 64),
    signed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- SEC-AUTHZ-08: the runtime role may append and read, nothing else.
GRANT SELECT, INSERT ON audit_events, audit_chain, audit_checkpoints TO tipline_app;
-- record() draws the id itself (one round trip without RETURNING, which RLS would refuse to
-- an operative who may write but not read the log); USAGE allows nextval/currval, not setval.
GRANT USAGE ON SEQUENCE audit_events_id_seq TO tipline_app;

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;

-- 'auditor' is the context of the sealer and the verifier, never of a person.
CREATE POLICY audit_events_read ON audit_events FOR SELECT
    USING (current_app_role() IN ('investigator', 'admin', 'auditor'));
-- Anyone may append, anonymous requests included: a failed login has no account yet.
-- Everyone may append (an anonymous failed login is audited), but only in their own name: the
-- service contexts write on behalf of whoever is logging in; everyone else as themselves.
CREATE POLICY audit_events_append ON audit_events FOR INSERT
    WITH CHECK (current_app_role() IN ('authenticator', 'auditor')
                OR (actor_id IS NOT DISTINCT FROM current_account_id()
                    AND actor_role IS NOT DISTINCT FROM current_app_role()));

CREATE POLICY audit_chain_read ON audit_chain FOR SELECT
    USING (current_app_role() IN ('investigator', 'admin', 'auditor'));
CREATE POLICY audit_chain_append ON audit_chain FOR INSERT
    WITH CHECK (current_app_role() = 'auditor');

CREATE POLICY audit_checkpoints_read ON audit_checkpoints FOR SELECT
    USING (current_app_role() IN ('investigator', 'admin', 'auditor'));
CREATE POLICY audit_checkpoints_append ON audit_checkpoints FOR INSERT
    WITH CHECK (current_app_role() = 'auditor');
