-- Identity and access (DESIGN §1, §3, §5): accounts, devices, invites, sessions, the DPoP replay
-- cache and the throttles, all in PostgreSQL so any replica can serve any request.
--
-- Row-level security is ENABLED and FORCED everywhere. Policies read the request context set by
-- server/db.py: an account's own id and role, or one of two service contexts that only the
-- identity service uses: 'authenticator' (login, enrolment, per-request session checks: work done
-- before anyone is known) and 'auditor' (the audit sealer).

CREATE TABLE accounts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- A pseudonym chosen by whoever invited the account; no real names are ever stored.
    handle           text NOT NULL UNIQUE CHECK (handle ~ '^[a-z0-9][a-z0-9_.-]{2,31}$'),
    role             text NOT NULL CHECK (role IN ('operative', 'investigator', 'officer', 'admin')),
    status           text NOT NULL DEFAULT 'enrolling'
                         CHECK (status IN ('enrolling', 'active', 'suspended')),
    password_hash    text CHECK (password_hash ~ '^\$argon2'),
    duress_hash      text CHECK (duress_hash ~ '^\$argon2'),
    -- The TOTP seed, sealed with a key that never enters the database (SEC-MFA-08).
    totp_seed_sealed bytea,
    -- The last accepted TOTP time step: a step is accepted at most once (RFC 6238 §5.2).
    totp_last_step   bigint,
    age_recipient    text CHECK (age_recipient ~ '^age1[02-9ac-hj-np-z]{58}$'),
    -- Alarms raised for investigators: a duress login, a hard lock-out.
    duress_at        timestamptz,
    locked_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (status = 'enrolling' OR (password_hash IS NOT NULL AND totp_seed_sealed IS NOT NULL))
);

CREATE TABLE devices (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id),
    public_jwk  jsonb NOT NULL CHECK (jsonb_typeof(public_jwk) = 'object' AND NOT public_jwk ? 'd'),
    -- RFC 7638 SHA-256 thumbprint, base64url: what sessions are bound to.
    thumbprint  text NOT NULL CHECK (thumbprint ~ '^[A-Za-z0-9_-]{43}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX devices_account_idx ON devices (account_id);
-- One live registration per key; a revoked key may be enrolled again after a factor reset.
CREATE UNIQUE INDEX devices_live_thumbprint_idx ON devices (thumbprint) WHERE revoked_at IS NULL;

CREATE TABLE invites (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SHA-256 of a 160-bit random code: the code is never stored, and its entropy makes a plain
    -- hash sufficient (63B-4 §4.2.1.1).
    code_hash   bytea NOT NULL UNIQUE CHECK (octet_length(code_hash) = 32),
    role        text NOT NULL CHECK (role IN ('operative', 'investigator', 'officer', 'admin')),
    handle      text NOT NULL CHECK (handle ~ '^[a-z0-9][a-z0-9_.-]{2,31}$'),
    created_by  uuid REFERENCES accounts (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    redeemed_at timestamptz,
    account_id  uuid REFERENCES accounts (id),
    CHECK (expires_at > created_at)
);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- SHA-256 of the 256-bit bearer token; a database dump yields no usable token.
    token_hash   bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    account_id   uuid NOT NULL REFERENCES accounts (id),
    device_id    uuid NOT NULL REFERENCES devices (id),
    -- A duress session looks normal to its holder but sees nothing real.
    duress       boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    idle_timeout interval NOT NULL CHECK (idle_timeout > interval '0'),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX sessions_account_idx ON sessions (account_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_device_idx ON sessions (device_id) WHERE ended_at IS NULL;

-- DPoP proofs already used (RFC 9449 §11.1), kept until they would be too old to accept anyway.
CREATE TABLE dpop_replay (
    jti_hash   bytea PRIMARY KEY CHECK (octet_length(jti_hash) = 32),
    expires_at timestamptz NOT NULL
);
CREATE INDEX dpop_replay_expiry_idx ON dpop_replay (expires_at);

-- Login throttling per handle, keyed by a keyed hash of the handle (not the account), so a
-- handle that does not exist is throttled exactly like one that does and the answers cannot
-- tell them apart.
CREATE TABLE login_throttle (
    subject_key          bytea PRIMARY KEY CHECK (octet_length(subject_key) = 32),
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    blocked_until        timestamptz,
    locked               boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Attempts per source address per fixed window; the address is stored only as a keyed hash.
CREATE TABLE source_throttle (
    source_key   bytea NOT NULL CHECK (octet_length(source_key) = 32),
    window_start timestamptz NOT NULL,
    attempts     integer NOT NULL CHECK (attempts >= 0),
    PRIMARY KEY (source_key, window_start)
);

-- A duress session (DESIGN §5) must see nothing real and change nothing; the policies below
-- make that hold in the database too, whatever the code above them does.
CREATE FUNCTION current_is_duress() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(nullif(current_setting('tipline.duress', true), '')::boolean, false) $$;
GRANT EXECUTE ON FUNCTION current_is_duress() TO tipline_app;

-- Column grants: no context may ever change an id, a handle, a role, a key or a timestamp that
-- records history. What each context may change within these columns is the trigger's job.
GRANT SELECT, INSERT ON accounts, devices, invites, sessions TO tipline_app;
GRANT UPDATE (status, password_hash, duress_hash, totp_seed_sealed, totp_last_step,
              age_recipient, duress_at, locked_at) ON accounts TO tipline_app;
GRANT UPDATE (revoked_at) ON devices TO tipline_app;
GRANT UPDATE (redeemed_at, account_id) ON invites TO tipline_app;
GRANT UPDATE (last_seen_at, ended_at) ON sessions TO tipline_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dpop_replay, login_throttle, source_throttle TO tipline_app;

-- Who may change what on an account. Row-level security decides which rows a context reaches;
-- this decides which columns, so that no account can raise its own standing (clear its alarms,
-- reopen TOTP replay, reactivate itself) and no admin can take over an investigator.
CREATE FUNCTION accounts_guard_update() RETURNS trigger
    LANGUAGE plpgsql
    -- Resolves the context functions whatever the caller's search_path.
    SET search_path = tipline, pg_catalog
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
CREATE TRIGGER accounts_guard_update BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_guard_update();

-- Revocation and logout are one-way: nothing un-revokes a device or revives a session.
CREATE FUNCTION devices_refuse_unrevoke() RETURNS trigger
    LANGUAGE plpgsql
    -- Resolves the context functions whatever the caller's search_path.
    SET search_path = tipline, pg_catalog
    AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'a revoked device stays revoked' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER devices_one_way BEFORE UPDATE ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_refuse_unrevoke();

CREATE FUNCTION sessions_refuse_revive() RETURNS trigger
    LANGUAGE plpgsql
    -- Resolves the context functions whatever the caller's search_path.
    SET search_path = tipline, pg_catalog
    AS $$
BEGIN
    IF (OLD.ended_at IS NOT NULL AND NEW.ended_at IS DISTINCT FROM OLD.ended_at)
       OR NEW.last_seen_at < OLD.last_seen_at THEN
        RAISE EXCEPTION 'an ended session stays ended' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sessions_one_way BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_refuse_revive();

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
ALTER TABLE devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE devices FORCE ROW LEVEL SECURITY;
ALTER TABLE invites ENABLE ROW LEVEL SECURITY;
ALTER TABLE invites FORCE ROW LEVEL SECURITY;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
ALTER TABLE dpop_replay ENABLE ROW LEVEL SECURITY;
ALTER TABLE dpop_replay FORCE ROW LEVEL SECURITY;
ALTER TABLE login_throttle ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_throttle FORCE ROW LEVEL SECURITY;
ALTER TABLE source_throttle ENABLE ROW LEVEL SECURITY;
ALTER TABLE source_throttle FORCE ROW LEVEL SECURITY;

-- Accounts: everyone sees their own; investigators see all (they manage operatives and vet
-- officers) but change nothing here; admins manage status and factors of everyone but
-- investigators; the authenticator logs in. A duress session changes nothing anywhere.
CREATE POLICY accounts_read ON accounts FOR SELECT
    USING (id = current_account_id()
           OR current_app_role() IN ('investigator', 'admin', 'authenticator'));
CREATE POLICY accounts_write ON accounts FOR UPDATE
    USING (NOT current_is_duress()
           AND (id = current_account_id()
                OR current_app_role() = 'authenticator'
                OR (current_app_role() = 'admin' AND role <> 'investigator')));
CREATE POLICY accounts_create ON accounts FOR INSERT
    WITH CHECK (current_app_role() = 'authenticator');

CREATE POLICY devices_read ON devices FOR SELECT
    USING (account_id = current_account_id()
           OR current_app_role() IN ('investigator', 'admin', 'authenticator'));
CREATE POLICY devices_write ON devices FOR UPDATE
    USING (NOT current_is_duress()
           AND (account_id = current_account_id()
                OR current_app_role() IN ('admin', 'authenticator')));
CREATE POLICY devices_create ON devices FOR INSERT
    WITH CHECK (current_app_role() = 'authenticator');

-- An admin may not invite an investigator on their own (DESIGN §1, §2).
CREATE POLICY invites_read ON invites FOR SELECT
    USING (created_by = current_account_id() OR current_app_role() IN ('admin', 'authenticator'));
CREATE POLICY invites_create ON invites FOR INSERT
    WITH CHECK (current_app_role() = 'authenticator'
                OR (created_by = current_account_id() AND NOT current_is_duress()
                    AND (current_app_role() = 'investigator'
                         OR (current_app_role() = 'admin' AND role <> 'investigator'))));
CREATE POLICY invites_redeem ON invites FOR UPDATE
    USING (current_app_role() = 'authenticator');

CREATE POLICY sessions_read ON sessions FOR SELECT
    USING (account_id = current_account_id() OR current_app_role() IN ('admin', 'authenticator'));
CREATE POLICY sessions_write ON sessions FOR UPDATE
    USING (account_id = current_account_id() OR current_app_role() IN ('admin', 'authenticator'));
CREATE POLICY sessions_create ON sessions FOR INSERT
    WITH CHECK (current_app_role() = 'authenticator');

CREATE POLICY dpop_replay_authenticator ON dpop_replay
    USING (current_app_role() = 'authenticator') WITH CHECK (current_app_role() = 'authenticator');
CREATE POLICY login_throttle_authenticator ON login_throttle
    USING (current_app_role() IN ('authenticator', 'admin'))
    WITH CHECK (current_app_role() IN ('authenticator', 'admin'));
CREATE POLICY source_throttle_authenticator ON source_throttle
    USING (current_app_role() = 'authenticator') WITH CHECK (current_app_role() = 'authenticator');
