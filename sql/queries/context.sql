-- name: set_account
-- Sets the row-level-security context (account id, role, duress) for the current transaction only.
SELECT set_config('tipline.account_id', $1::text, true),
       set_config('tipline.role', $2::text, true),
       set_config('tipline.duress', $3::text, true);
