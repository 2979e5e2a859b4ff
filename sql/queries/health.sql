-- name: ping
-- Proves the database answers and the app's schema is reachable.
SELECT count(*) >= 0 FROM schema_migrations;
