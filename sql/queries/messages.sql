-- name: report_owner
-- The operative a report belongs to (null when the caller cannot see the report).
SELECT operative_id FROM reports WHERE id = $1;

-- name: insert
-- Stores a message unless one with this id exists.
INSERT INTO report_messages (id, report_id, author_id, author_role, device_id, device_key,
                             sent_at, ciphertext, ciphertext_sha256, signature)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10)
ON CONFLICT (id) DO NOTHING
RETURNING received_at;

-- name: existing
-- A stored message by id, to tell a retry from a conflict.
SELECT report_id, author_id, ciphertext_sha256, signature, received_at
FROM report_messages WHERE id = $1;

-- name: thread
-- The messages of one report, oldest first.
SELECT id, report_id, author_id, author_role, device_id, sent_at, received_at,
       ciphertext, ciphertext_sha256, signature, device_key::text AS device_jwk
FROM report_messages
WHERE report_id = $1
ORDER BY received_at, id
LIMIT $2;

-- name: inbox
-- Messages to the caller (written by someone else in a thread they can see), unread first.
SELECT m.id, m.report_id, m.author_role, m.received_at, (r.message_id IS NOT NULL) AS read
FROM report_messages m
LEFT JOIN message_reads r ON r.message_id = m.id AND r.account_id = $1
WHERE m.author_id <> $1
ORDER BY (r.message_id IS NOT NULL), m.received_at DESC, m.id DESC
LIMIT $2;

-- name: mark_read
-- Marks a message read by the caller (idempotent).
INSERT INTO message_reads (message_id, account_id)
SELECT id, $2 FROM report_messages WHERE id = $1
ON CONFLICT DO NOTHING;
