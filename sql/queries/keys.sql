-- name: lock_directories
-- Serialises publishers for the rest of the transaction, so the version check and the insert act as one.
SELECT pg_advisory_xact_lock(hashtext('tipline.key_directories'));

-- name: current_directory
-- The newest published directory: its version, the exact signed bytes and the root signature.
SELECT version, directory, signature FROM key_directories ORDER BY version DESC LIMIT 1;

-- name: entry_accounts
-- The accounts a directory names, with what an entry must match: role, status, enrolled age recipient.
SELECT id, role, status, age_recipient FROM accounts WHERE id = ANY($1::uuid[]);

-- name: live_device_thumbprints
-- The RFC 7638 thumbprints of the unrevoked device keys of the accounts a directory names.
SELECT account_id, thumbprint FROM devices WHERE account_id = ANY($1::uuid[]) AND revoked_at IS NULL;

-- name: insert_directory
-- Stores a verified directory; row-level security lets only an investigator publish, as themselves.
INSERT INTO key_directories (version, directory, signature, published_by) VALUES ($1, $2, $3, $4);

-- name: directory_at
-- One published directory by version (versions never change once stored).
SELECT directory FROM key_directories WHERE version = $1;

-- name: current_version
-- The newest published directory's version, or NULL when none has been published.
SELECT max(version) FROM key_directories;
