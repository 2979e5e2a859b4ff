-- The request context that row-level security policies read. The service sets it per
-- transaction with set_config(..., is_local => true) (server/db.py); outside a request both
-- are empty, which every policy treats as "nobody".

CREATE FUNCTION current_account_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('tipline.account_id', true), '')::uuid $$;

CREATE FUNCTION current_app_role() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('tipline.role', true), '') $$;

GRANT EXECUTE ON FUNCTION current_account_id(), current_app_role() TO tipline_app;
