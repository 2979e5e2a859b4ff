-- name: set_account
-- Sets the row-level-security context (account id, role, duress) for the current transaction only.
SELECT enter_context($1::text, $2::text, $3::text);
