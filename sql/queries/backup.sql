-- name: export_snapshot
-- Names this transaction's snapshot so pg_dump and the evidence listing see the same instant.
SELECT pg_export_snapshot();

-- name: stored_objects
-- Every complete evidence object, with the digest recorded when it was completed.
SELECT storage_key, storage_state, upload_length, ciphertext_sha256
FROM tipline.attachments
WHERE status = 'complete'
ORDER BY storage_key;

-- name: counts
-- Row counts of the tables a restore must bring back, for the manifest and the check after.
SELECT (SELECT count(*) FROM tipline.accounts) AS accounts,
       (SELECT count(*) FROM tipline.reports) AS reports,
       (SELECT count(*) FROM tipline.report_messages) AS messages,
       (SELECT count(*) FROM tipline.attachments WHERE status = 'complete') AS attachments,
       (SELECT count(*) FROM tipline.attachment_custody) AS custody_events,
       (SELECT count(*) FROM tipline.leads) AS leads,
       (SELECT count(*) FROM tipline.lead_shares) AS shares,
       (SELECT count(*) FROM tipline.key_directories) AS key_directories,
       (SELECT count(*) FROM tipline.audit_events) AS audit_events,
       (SELECT count(*) FROM tipline.audit_chain) AS audit_chain;

-- name: user_relations
-- How many tables, views or sequences exist outside the system schemas (0 for a fresh database).
SELECT count(*)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%';

-- name: ensure_roles
-- Creates the two cluster-wide roles the dump's owners and grants name, as sql/bootstrap.sql does.
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
