-- Run by `tipline migrate` before the numbered migrations, as the privileged migration role.
-- Idempotent: it creates what every migration relies on and changes nothing that exists.
--
-- tipline_owner owns every table; migrations run as it (SET ROLE). tipline_app is the role the
-- service logs in as: it owns nothing and cannot bypass row-level security, so the RLS policies
-- bind it even if the service is compromised.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tipline_owner') THEN
        CREATE ROLE tipline_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tipline_app') THEN
        CREATE ROLE tipline_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;
    END IF;
END
$$;

GRANT tipline_owner TO CURRENT_USER;

CREATE SCHEMA IF NOT EXISTS tipline AUTHORIZATION tipline_owner;
GRANT USAGE ON SCHEMA tipline TO tipline_app;
REVOKE ALL ON SCHEMA public FROM PUBLIC;

CREATE TABLE IF NOT EXISTS tipline.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    applied_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tipline.schema_migrations OWNER TO tipline_owner;
GRANT SELECT ON tipline.schema_migrations TO tipline_app;
