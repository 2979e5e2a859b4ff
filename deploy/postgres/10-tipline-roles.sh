#!/usr/bin/env bash
# Runs once, as the PostgreSQL superuser, when the compose `db` service starts on an empty data
# directory (docker-entrypoint-initdb.d). It creates the two login roles Tipline uses:
#   tipline_migrator  owns the database and runs `tipline migrate`; CREATEROLE so bootstrap.sql
#                     can create tipline_owner, never SUPERUSER
#   tipline_app       what the service logs in as: owns nothing, cannot bypass row-level security
# Passwords are read from secret files by psql itself (\set with backticks), so they never
# appear in a process's arguments or environment.
set -euo pipefail

export TIPLINE_DB_SECRETS_DIR="${TIPLINE_DB_SECRETS_DIR:-/run/secrets}"
for name in tipline_app_db_password tipline_migrator_db_password; do
    if [[ ! -s "${TIPLINE_DB_SECRETS_DIR}/${name}" ]]; then
        echo "10-tipline-roles: ${TIPLINE_DB_SECRETS_DIR}/${name} is missing or empty" >&2
        exit 1
    fi
done

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" \
    -v db="${POSTGRES_DB}" <<'SQL'
-- A statement log would otherwise keep the passwords below.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
\set app_password `cat "$TIPLINE_DB_SECRETS_DIR/tipline_app_db_password"`
\set migrator_password `cat "$TIPLINE_DB_SECRETS_DIR/tipline_migrator_db_password"`

SELECT format('CREATE ROLE tipline_migrator LOGIN CREATEROLE NOSUPERUSER NOCREATEDB '
              'NOBYPASSRLS PASSWORD %L', :'migrator_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tipline_migrator') \gexec

SELECT format('CREATE ROLE tipline_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
              'NOBYPASSRLS NOINHERIT PASSWORD %L', :'app_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tipline_app') \gexec

ALTER DATABASE :"db" OWNER TO tipline_migrator;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO tipline_app;
SQL
