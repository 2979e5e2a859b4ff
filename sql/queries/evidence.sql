-- name: lock_quota
-- Serialises one account's upload creations, so two cannot both pass the quota below.
SELECT pg_advisory_xact_lock(hashtextextended('tipline.evidence.quota:' || $1::uuid::text, 0));

-- name: insert_upload
-- Creates an upload unless the id exists or the owner is over a quota; returns nothing then.
INSERT INTO attachments (id, owner_id, owner_role, device_id, storage_key, storage_state,
                         upload_length, declared_sha256, expires_at)
SELECT $1, $2, $3, $4, $5, $6, $7::bigint, $8, now() + make_interval(secs => $9)
WHERE (SELECT count(*) FROM attachments
       WHERE owner_id = $2 AND status IN ('uploading', 'finalizing') AND expires_at > now())
      < $10::bigint
  AND (SELECT coalesce(sum(upload_length), 0) FROM attachments
       WHERE owner_id = $2 AND created_at > now() - interval '1 day') + $7::bigint
      <= $11::bigint
ON CONFLICT (id) DO NOTHING
RETURNING expires_at;

-- name: quota
-- An owner's open uploads and bytes declared in the last day, and when each limit frees up.
WITH mine AS (
    -- Row-level security shows a real session only attachments and a duress session only its
    -- decoys, so each is held to the same limits by the same query.
    SELECT id, status, upload_length, created_at, expires_at FROM attachments WHERE owner_id = $1
    UNION ALL
    SELECT attachment_id, status, upload_length, created_at, expires_at FROM evidence_decoys
    WHERE account_id = $1
), today AS (
    SELECT created_at,
           sum(upload_length) OVER (ORDER BY created_at, id ROWS UNBOUNDED PRECEDING) AS aged_out,
           sum(upload_length) OVER () AS total
    FROM mine WHERE created_at > now() - interval '1 day'
)
SELECT (SELECT count(*) FROM mine
        WHERE status IN ('uploading', 'finalizing') AND expires_at > now()) AS open_uploads,
       (SELECT coalesce(sum(upload_length), 0) FROM mine
        WHERE created_at > now() - interval '1 day')::bigint AS declared_today,
       (SELECT ceil(extract(epoch FROM min(expires_at) - now()))::bigint FROM mine
        WHERE status IN ('uploading', 'finalizing') AND expires_at > now()) AS open_free_s,
       (SELECT ceil(extract(epoch FROM min(created_at) + interval '1 day' - now()))::bigint
        FROM today WHERE total - aged_out + $2::bigint <= $3::bigint) AS bytes_free_s;

-- name: own_upload
-- One upload of the given owner; another account's upload is indistinguishable from none.
SELECT id, owner_id, storage_key, storage_state, upload_length, declared_sha256, upload_offset,
       ciphertext_sha256, status, expires_at, expires_at <= now() AS expired
FROM attachments
WHERE id = $1 AND owner_id = $2;

-- name: claim
-- Takes the upload for one PATCH at the expected offset, unless another PATCH holds it.
UPDATE attachments
SET lease_id = $4, lease_until = now() + make_interval(secs => $5)
WHERE id = $1 AND owner_id = $2 AND status = 'uploading' AND expires_at > now()
  AND upload_offset = $3 AND (lease_until IS NULL OR lease_until < now())
RETURNING storage_key, storage_state, upload_length, declared_sha256;

-- name: claim_finalizing
-- Takes a fully received upload to finish it (a retry after a failed or killed completion).
UPDATE attachments
SET lease_id = $3, lease_until = now() + make_interval(secs => $4)
WHERE id = $1 AND owner_id = $2 AND status = 'finalizing' AND expires_at > now()
  AND (lease_until IS NULL OR lease_until < now())
RETURNING storage_key, storage_state, upload_length, declared_sha256;

-- name: renew
-- Extends a request's hold on its upload while bytes are still flowing or being re-hashed.
UPDATE attachments SET lease_until = now() + make_interval(secs => $3)
WHERE id = $1 AND lease_id = $2 AND status IN ('uploading', 'finalizing')
RETURNING id;

-- name: release
-- Gives up a PATCH's hold without moving the offset (refused or failed chunk).
UPDATE attachments SET lease_id = NULL, lease_until = NULL
WHERE id = $1 AND lease_id = $2;

-- name: advance
-- Records bytes durably stored by the holder of the lease and pushes the expiry back.
UPDATE attachments
SET upload_offset = $4, storage_state = $5, expires_at = now() + make_interval(secs => $6),
    lease_id = NULL, lease_until = NULL
WHERE id = $1 AND lease_id = $2 AND upload_offset = $3 AND status = 'uploading'
RETURNING expires_at;

-- name: finalizing
-- Records that the holder of the lease stored the last byte, before any irreversible storage
-- step; keeps the lease (renewed) for the completion that follows.
UPDATE attachments
SET status = 'finalizing', upload_offset = upload_length, storage_state = $4,
    expires_at = now() + make_interval(secs => $5),
    lease_until = now() + make_interval(secs => $6)
WHERE id = $1 AND lease_id = $2 AND upload_offset = $3 AND status = 'uploading'
RETURNING expires_at;

-- name: complete
-- Marks a finalizing upload complete with the digest computed over its stored bytes.
UPDATE attachments
SET status = 'complete', ciphertext_sha256 = $3, completed_at = now(), lease_id = NULL,
    lease_until = NULL
WHERE id = $1 AND lease_id = $2 AND status = 'finalizing'
RETURNING completed_at;

-- name: retire
-- Marks an unfinished upload deleted (termination, refused bytes, sweep); returns its object.
UPDATE attachments
SET status = 'deleted', lease_id = NULL, lease_until = NULL
WHERE id = $1 AND status IN ('uploading', 'finalizing')
RETURNING storage_key, storage_state;

-- name: expired
-- Abandoned uploads past their expiry that no PATCH holds, oldest first, for the sweeper.
SELECT id, storage_key, storage_state
FROM attachments
WHERE status IN ('uploading', 'finalizing') AND expires_at <= now()
  AND (lease_until IS NULL OR lease_until < now())
ORDER BY expires_at
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: downloadable
-- A complete attachment the caller may see, with the status of the report citing it, if any.
SELECT a.id, a.owner_id, a.storage_key, a.upload_length, a.ciphertext_sha256, a.report_id,
       r.status AS report_status
FROM attachments a
LEFT JOIN reports r ON r.id = a.report_id
WHERE a.id = $1 AND a.status = 'complete';

-- name: visible
-- Whether an attachment (in any state) is visible to the caller.
SELECT status FROM attachments WHERE id = $1;

-- name: record_custody
-- Appends one custody event, tied to the audit event that seals it into the chain.
INSERT INTO attachment_custody (attachment_id, audit_event_id, event, actor_id, actor_role,
                                range_start, range_end)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: custody
-- An attachment's chain of custody, oldest first.
SELECT c.event, c.occurred_at, c.actor_id, c.actor_role, c.audit_event_id, c.range_start,
       c.range_end
FROM attachment_custody c
WHERE c.attachment_id = $1
ORDER BY c.id;

-- name: cited
-- The attachments a report cites, as the citing operative sees them.
SELECT id, owner_id, status, ciphertext_sha256, report_id
FROM attachments
WHERE id = ANY($1::uuid[]);

-- name: decoy
-- What a duress session was told about one of its uploads, shaped as own_upload is.
SELECT attachment_id AS id, upload_length, declared_sha256, upload_offset, status, expires_at,
       expires_at <= now() AS expired
FROM evidence_decoys
WHERE account_id = $1 AND attachment_id = $2;

-- name: insert_decoy
-- A duress session's new upload (the caller holds lock_quota and checked the quota).
INSERT INTO evidence_decoys (account_id, attachment_id, upload_length, declared_sha256,
                             expires_at)
VALUES ($1, $2, $3::bigint, $4, now() + make_interval(secs => $5))
RETURNING expires_at;

-- name: trim_decoys
-- Keeps an account's $2 most recently written decoys: a coerced phone cannot grow the table.
DELETE FROM evidence_decoys
WHERE account_id = $1
  AND attachment_id IN (SELECT attachment_id FROM evidence_decoys WHERE account_id = $1
                        ORDER BY touched_at DESC OFFSET $2);

-- name: advance_decoy
-- Moves a duress session's upload from offset $3 to $4, as advance does a real one's.
UPDATE evidence_decoys
SET upload_offset = $4::bigint,
    status = CASE WHEN $4::bigint = upload_length THEN 'complete' ELSE 'uploading' END,
    expires_at = now() + make_interval(secs => $5),
    touched_at = clock_timestamp()
WHERE account_id = $1 AND attachment_id = $2 AND status = 'uploading'
  AND upload_offset = $3::bigint AND expires_at > now()
RETURNING expires_at;

-- name: retire_decoy
-- A duress session's terminated upload: gone for HEAD and PATCH, its id still taken.
UPDATE evidence_decoys SET status = 'deleted', touched_at = clock_timestamp()
WHERE account_id = $1 AND attachment_id = $2 AND status = 'uploading'
RETURNING attachment_id;

-- name: sweep_decoys
-- Expired unfinished decoys, retired by the evidence sweeper as real uploads are.
UPDATE evidence_decoys SET status = 'deleted'
WHERE status = 'uploading' AND expires_at <= now();
