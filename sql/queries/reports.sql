-- name: submit
-- The whole idempotent intake, in its own transaction under the operative's context (0010).
SELECT * FROM submit_report($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::text::jsonb,
                             $14::uuid[], $15::text[], $16::text[]);

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

-- name: is_stored
-- Whether a report with this id is visible in the current context (the caller's own).
SELECT EXISTS (SELECT FROM reports WHERE id = $1);

-- name: attachments
-- The attachments a report cites, with the digests its signed message gives for each.
SELECT id AS attachment_id, plaintext_sha256, ciphertext_sha256
FROM attachments WHERE report_id = $1 ORDER BY id;
