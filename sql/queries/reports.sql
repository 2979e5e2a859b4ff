-- name: device_key
-- The public JWK of a registered device (to verify what it signed).
SELECT public_jwk::text FROM devices WHERE id = $1;

-- name: insert
-- Stores a submitted report unless one with this id exists; returns nothing on a duplicate.
INSERT INTO reports (id, operative_id, device_id, sent_at, received_at, directory_version,
                     ciphertext, ciphertext_sha256, signature, receipt)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO NOTHING
RETURNING receipt;

-- name: existing
-- What was stored under a report id, to tell a retry (same bytes) from a conflict.
SELECT operative_id, sent_at, ciphertext_sha256, signature, receipt, received_at
FROM reports WHERE id = $1;

-- name: queue
-- The investigators' queue, newest first, keyset-paginated, every filter optional.
SELECT id, operative_id, received_at, sent_at, status, priority, directory_version,
       octet_length(ciphertext) AS ciphertext_bytes
FROM reports
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::smallint IS NULL OR priority = $2)
  AND ($3::timestamptz IS NULL OR received_at >= $3)
  AND ($4::timestamptz IS NULL OR received_at < $4)
  AND ($5::uuid IS NULL OR operative_id = $5)
  AND ($6::timestamptz IS NULL OR (received_at, id) < ($6, $7::uuid))
ORDER BY received_at DESC, id DESC
LIMIT $8;

-- name: own
-- An operative's own reports: ids and statuses only, newest first.
SELECT id, status, received_at
FROM reports
WHERE operative_id = $1
  AND ($2::timestamptz IS NULL OR (received_at, id) < ($2, $3::uuid))
ORDER BY received_at DESC, id DESC
LIMIT $4;

-- name: full
-- One report with its ciphertext, signature and the signing device's public key.
SELECT r.id, r.operative_id, r.device_id, r.sent_at, r.received_at, r.directory_version,
       r.ciphertext, r.ciphertext_sha256, r.signature, r.receipt, r.status, r.priority,
       d.public_jwk::text AS device_jwk
FROM reports r JOIN devices d ON d.id = r.device_id
WHERE r.id = $1;

-- name: status_of
-- A report's current status and owner, locked for a triage decision.
SELECT status, priority, operative_id FROM reports WHERE id = $1 FOR UPDATE;

-- name: set_triage
-- Records a triage decision.
UPDATE reports SET status = $2, priority = $3, updated_at = now() WHERE id = $1;
