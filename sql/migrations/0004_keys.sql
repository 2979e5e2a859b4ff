-- The organisation key directory (DESIGN §3): investigators' and officers' age recipients and
-- device keys, signed offline by the organisation root key (Ed25519). The server only stores
-- and serves what the root key signed; clients verify it themselves, so a compromised server
-- cannot substitute its own keys. Every published version is kept, append-only, so which keys
-- reports were encrypted to at any time stays provable.

CREATE TABLE key_directories (
    version      integer PRIMARY KEY CHECK (version > 0),
    -- The exact signed bytes: re-encoding would break the signature.
    directory    bytea NOT NULL CHECK (octet_length(directory) BETWEEN 2 AND 262144),
    signature    bytea NOT NULL CHECK (octet_length(signature) = 64),
    published_by uuid NOT NULL REFERENCES accounts (id),
    published_at timestamptz NOT NULL DEFAULT now()
);

-- Versions only go up: a server (or an investigator's stolen session) replaying an old, still
-- validly signed directory would bring back a removed investigator's or officer's keys. The
-- lock serialises publishers, so two concurrent inserts cannot both pass the check.
CREATE FUNCTION key_directories_only_forward() RETURNS trigger
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

CREATE TRIGGER key_directories_only_forward BEFORE INSERT ON key_directories
    FOR EACH ROW EXECUTE FUNCTION key_directories_only_forward();
-- audit_refuse_change() is 0002_audit.sql's: the same refusal for every append-only table.
CREATE TRIGGER key_directories_append_only BEFORE UPDATE OR DELETE ON key_directories
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER key_directories_no_truncate BEFORE TRUNCATE ON key_directories
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

GRANT SELECT, INSERT ON key_directories TO tipline_app;

ALTER TABLE key_directories ENABLE ROW LEVEL SECURITY;
ALTER TABLE key_directories FORCE ROW LEVEL SECURITY;

-- Public keys only, needed by every client to encrypt and verify: any signed-in account reads
-- them (a duress session too: an empty answer would give the duress away). Only an investigator
-- publishes, in their own name, and never from a duress session.
CREATE POLICY key_directories_read ON key_directories FOR SELECT
    USING (current_account_id() IS NOT NULL OR current_app_role() = 'authenticator');
CREATE POLICY key_directories_publish ON key_directories FOR INSERT
    WITH CHECK (current_app_role() = 'investigator'
                AND published_by = current_account_id()
                AND NOT current_is_duress());
