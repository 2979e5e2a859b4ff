-- name: lock
-- Serialises concurrent `tipline migrate` runs (e.g. several replicas starting at once).
SELECT pg_advisory_lock(hashtext('tipline.migrate'));

-- name: unlock
-- Releases the lock taken by migrations.lock.
SELECT pg_advisory_unlock(hashtext('tipline.migrate'));

-- name: applied
-- Every applied migration with the checksum of the file as it was applied.
SELECT version, name, checksum FROM tipline.schema_migrations ORDER BY version;

-- name: record
-- Records one migration as applied, in the same transaction as the migration itself.
INSERT INTO tipline.schema_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- name: become_owner
-- Makes the rest of this transaction run as the role that owns the schema.
SELECT set_config('role', 'tipline_owner', true), set_config('search_path', 'tipline', true);
