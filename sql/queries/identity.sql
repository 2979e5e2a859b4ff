-- name: count_active_investigators
-- How many investigators exist or are enrolling: the bootstrap invite is only for an empty system.
SELECT count(*) FROM accounts WHERE role = 'investigator' AND status <> 'suspended';

-- name: handle_taken
-- Whether a handle is used by an account or reserved by an unexpired, unredeemed invite.
SELECT EXISTS (SELECT FROM accounts WHERE handle = $1)
    OR EXISTS (SELECT FROM invites WHERE handle = $1 AND redeemed_at IS NULL AND expires_at > now());

-- name: create_invite
-- Stores a new invite by the hash of its code; the code itself is never stored.
INSERT INTO invites (code_hash, role, handle, created_by, expires_at)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8))
RETURNING id, expires_at;

-- name: take_invite
-- Locks an unredeemed, unexpired invite for redemption, so a code is redeemed at most once.
SELECT id, role, handle, account_id FROM invites
WHERE code_hash = $1 AND redeemed_at IS NULL AND expires_at > now()
FOR UPDATE;

-- name: create_account
-- Creates an account in the enrolling state with its password hash and sealed TOTP seed.
INSERT INTO accounts (id, handle, role, password_hash, totp_seed_sealed, age_recipient)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: create_device
-- Registers a device public key (JWK) for an account, bound by its RFC 7638 thumbprint.
INSERT INTO devices (account_id, public_jwk, thumbprint) VALUES ($1, $2, $3)
RETURNING id;

-- name: redeem_invite
-- Marks an invite used by the account it created.
UPDATE invites SET redeemed_at = now(), account_id = $2 WHERE id = $1;

-- name: enrolling_account
-- The enrolling account whose registered, unrevoked device has this thumbprint.
SELECT a.id, a.role, a.handle, a.totp_seed_sealed
FROM accounts a JOIN devices d ON d.account_id = a.id
WHERE a.id = $1 AND a.status = 'enrolling' AND d.thumbprint = $2 AND d.revoked_at IS NULL;

-- name: activate_account
-- Activates an enrolling account once its first TOTP code was accepted.
UPDATE accounts SET status = 'active' WHERE id = $1 AND status = 'enrolling';

-- name: login_account
-- What a login checks for a handle: the account, its factors and status.
SELECT id, role, status, password_hash, duress_hash, totp_seed_sealed
FROM accounts WHERE handle = $1;

-- name: login_device
-- The account's registered, unrevoked device with this key thumbprint.
SELECT id FROM devices WHERE account_id = $1 AND thumbprint = $2 AND revoked_at IS NULL;

-- name: consume_totp_step
-- Accepts a TOTP time step only if it is newer than the last one accepted: check and use in one
-- statement, so concurrent logins with one code cannot both pass (RFC 6238 §5.2, SEC-MFA-04).
UPDATE accounts SET totp_last_step = $2
WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)
RETURNING id;

-- name: set_password_hash
-- Replaces a password hash (rehash on login when the argon2 parameters rose).
UPDATE accounts SET password_hash = $2 WHERE id = $1;

-- name: create_session
-- Starts a session bound to one device; only the token's hash is stored.
INSERT INTO sessions (token_hash, account_id, device_id, duress, idle_timeout, expires_at)
VALUES ($1, $2, $3, $4, make_interval(secs => $5::float8), now() + make_interval(secs => $6::float8))
RETURNING id, expires_at;

-- name: end_real_sessions
-- Ends every non-duress session of an account (a duress login, a suspension).
UPDATE sessions SET ended_at = now()
WHERE account_id = $1 AND ended_at IS NULL AND NOT duress;

-- name: end_all_sessions
-- Ends every open session of an account.
UPDATE sessions SET ended_at = now() WHERE account_id = $1 AND ended_at IS NULL;

-- name: raise_duress_alarm
-- Flags the account for investigators: a duress password was used (the first time is kept).
UPDATE accounts SET duress_at = now() WHERE id = $1 AND duress_at IS NULL;

-- name: authenticate
-- One round trip per request, in its own transaction (0010): the live session for this token and
-- device key, its idle timer touched, and whether the DPoP proof's jti was fresh.
SELECT * FROM authenticate_session($1, $2, $3, $4);

-- name: record_dpop_jti
-- Records a DPoP proof's jti outside a session (login, enrolment); false when it was seen.
INSERT INTO dpop_replay (jti_hash, expires_at) VALUES ($1, now() + make_interval(secs => $2::float8))
ON CONFLICT (jti_hash) DO NOTHING
RETURNING true;

-- name: end_session
-- Ends one session (logout).
UPDATE sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL;

-- name: account_view
-- What an account may see of itself, or an investigator or admin of any account.
SELECT id, handle, role, status, created_at, duress_at, locked_at
FROM accounts WHERE id = $1;

-- name: list_accounts
-- Accounts for investigators and admins, alarms first.
SELECT id, handle, role, status, created_at, duress_at, locked_at
FROM accounts
ORDER BY (duress_at IS NOT NULL OR locked_at IS NOT NULL) DESC, created_at DESC, id
LIMIT $1;

-- name: ensure_login_throttle
-- Makes sure a handle has a throttle row, so the next statement can lock it.
INSERT INTO login_throttle (subject_key) VALUES ($1) ON CONFLICT (subject_key) DO NOTHING;

-- name: lock_login_throttle
-- Locks the handle's throttle row for this attempt: concurrent attempts on one handle queue here
-- for the few milliseconds it takes to count them, never across the password check.
SELECT consecutive_failures, locked,
       (blocked_until IS NOT NULL AND blocked_until > now()) AS blocked,
       greatest(0, ceil(extract(epoch FROM blocked_until - now())))::int AS retry_after_s
FROM login_throttle WHERE subject_key = $1
FOR UPDATE;

-- name: count_login_attempt
-- Counts an attempt as a failure before its password is checked (a success clears it), so a
-- burst of parallel guesses cannot all pass the gate. Sets the back-off for the new count:
-- $2 failures before back-off, $3 base seconds, $4 maximum seconds.
UPDATE login_throttle SET
    consecutive_failures = consecutive_failures + 1,
    blocked_until = CASE WHEN consecutive_failures + 1 >= $2::int
        THEN now() + make_interval(secs => least(
            $4::float8, $3::float8 * power(2, consecutive_failures + 1 - $2::int)))
        END,
    updated_at = now()
WHERE subject_key = $1;

-- name: lock_login_throttle_hard
-- The handle has failed too often: only an admin's unlock lifts this.
UPDATE login_throttle SET locked = true, updated_at = now() WHERE subject_key = $1;

-- name: clear_login_failures
-- A successful login clears the handle's failure count (never a hard lock).
UPDATE login_throttle SET consecutive_failures = 0, blocked_until = NULL, updated_at = now()
WHERE subject_key = $1 AND NOT locked;

-- name: lock_account
-- Flags an account as hard-locked for investigators and admins.
UPDATE accounts SET locked_at = now() WHERE id = $1 AND locked_at IS NULL;

-- name: unlock
-- An admin lifts a hard lock: the throttle row goes and the account flag clears.
WITH cleared AS (DELETE FROM login_throttle WHERE subject_key = $2)
UPDATE accounts SET locked_at = NULL WHERE id = $1 RETURNING id;

-- name: count_source_attempt
-- Counts one attempt from a source address in the current fixed window; returns the count.
INSERT INTO source_throttle AS t (source_key, window_start, attempts)
VALUES ($1, to_timestamp(floor(extract(epoch FROM now()) / $2::int) * $2::int), 1)
ON CONFLICT (source_key, window_start) DO UPDATE SET attempts = t.attempts + 1
RETURNING attempts,
          ceil($2::int - (extract(epoch FROM now()) - extract(epoch FROM window_start)))::int
              AS retry_after_s;

-- name: set_status
-- Suspends or reactivates an account.
UPDATE accounts SET status = $2 WHERE id = $1 AND status <> 'enrolling' RETURNING id, handle;

-- name: reset_factors
-- Forces re-enrolment of the password and TOTP: the account goes back to enrolling.
UPDATE accounts SET status = 'enrolling', password_hash = NULL, duress_hash = NULL,
                    totp_seed_sealed = NULL, totp_last_step = NULL
WHERE id = $1 RETURNING handle, role;

-- name: revoke_account_devices
-- Revokes every device of an account (a factor reset: the lost phone must not stay a factor).
UPDATE devices SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL;

-- name: account_role
-- The role of an account, for rules about who may act on whom.
SELECT role FROM accounts WHERE id = $1;

-- name: revoke_device
-- Revokes a device key; returns its account so its sessions can be ended.
UPDATE devices SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING account_id;

-- name: end_device_sessions
-- Ends every open session of a device.
UPDATE sessions SET ended_at = now() WHERE device_id = $1 AND ended_at IS NULL;

-- name: set_duress_hash
-- Sets or replaces the account's duress password hash.
UPDATE accounts SET duress_hash = $2 WHERE id = $1;

-- name: account_handle
-- The handle of an account (for admin actions keyed by handle).
SELECT handle FROM accounts WHERE id = $1;

-- name: reenrol_account
-- Sets new factors on an account that an admin reset (status enrolling, no password).
UPDATE accounts SET password_hash = $2, totp_seed_sealed = $3, age_recipient = $4
WHERE id = $1 AND status = 'enrolling' AND password_hash IS NULL
RETURNING id;

-- name: create_reset_invite
-- An invite that re-enrols an existing account after an admin reset.
INSERT INTO invites (code_hash, role, handle, created_by, expires_at, account_id)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8), $6)
RETURNING id, expires_at;

-- name: sweep_dpop_replay
-- Forgets DPoP proofs that are too old to be accepted anyway.
DELETE FROM dpop_replay WHERE expires_at < now();

-- name: sweep_source_throttle
-- Forgets per-source windows that have closed ($1: the window length in seconds).
DELETE FROM source_throttle WHERE window_start < now() - make_interval(secs => $1::float8);
