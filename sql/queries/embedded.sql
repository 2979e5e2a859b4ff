-- name: database_exists
-- Whether the embedded cluster already holds the named database.
SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1);
