-- name: try_lead
-- Makes this transaction the one retention run across every replica, or says another is.
SELECT pg_try_advisory_xact_lock(hashtext('tipline.retention'));

-- name: rejected_due
-- Rejected reports due for shredding at $1 ($2 days after rejection); one a lead cites follows the lead's rule.
SELECT r.id
FROM reports r
WHERE r.status = 'rejected' AND r.ciphertext_shredded_at IS NULL
  AND coalesce(r.updated_at, r.received_at) <= $1::timestamptz - make_interval(days => $2::int)
  AND NOT EXISTS (SELECT FROM lead_reports lr WHERE lr.report_id = r.id)
ORDER BY r.updated_at, r.id
LIMIT $3
FOR UPDATE OF r SKIP LOCKED;

-- name: shred_report
-- Empties a rejected report's ciphertext; the digest, signature and receipt stay.
UPDATE reports SET ciphertext = '\x'::bytea, ciphertext_shredded_at = $2
WHERE id = $1 AND status = 'rejected' AND ciphertext_shredded_at IS NULL
RETURNING id;

-- name: evidence_of_reports
-- The complete evidence the given reports cite, locked for retirement.
SELECT a.id, a.report_id, a.storage_key, a.storage_state
FROM attachments a
WHERE a.report_id = ANY($1::uuid[]) AND a.status = 'complete'
ORDER BY a.id
FOR UPDATE OF a SKIP LOCKED;

-- name: closed_lead_evidence_due
-- Complete evidence whose every citing lead was closed at least $2 days before $1 and is not on hold.
SELECT a.id, a.report_id, a.storage_key, a.storage_state
FROM attachments a
WHERE a.status = 'complete' AND a.report_id IS NOT NULL
  AND EXISTS (SELECT FROM lead_reports lr WHERE lr.report_id = a.report_id)
  AND NOT EXISTS (
      SELECT FROM lead_reports lr JOIN leads l ON l.id = lr.lead_id
      WHERE lr.report_id = a.report_id
        AND (l.status <> 'closed'
             OR coalesce(l.updated_at, l.created_at)
                > $1::timestamptz - make_interval(days => $2::int)
             OR EXISTS (SELECT FROM lead_holds h WHERE h.lead_id = l.id)))
ORDER BY a.id
LIMIT $3
FOR UPDATE OF a SKIP LOCKED;

-- name: shred_attachment
-- Marks complete evidence deleted (its stored object is removed once this commits).
UPDATE attachments SET status = 'deleted'
WHERE id = $1 AND status = 'complete'
RETURNING id;

-- name: sweep_sessions
-- Deletes sessions that ended, expired or went idle at least $2 seconds before $1.
DELETE FROM sessions
WHERE least(coalesce(ended_at, 'infinity'::timestamptz), expires_at, last_seen_at + idle_timeout)
      <= $1::timestamptz - make_interval(secs => $2::float8);

-- name: sweep_login_throttle
-- Deletes per-handle throttle rows that hold no failure and no lock, untouched for $2 seconds before $1.
DELETE FROM login_throttle
WHERE consecutive_failures = 0 AND NOT locked
  AND (blocked_until IS NULL OR blocked_until <= $1::timestamptz)
  AND updated_at <= $1::timestamptz - make_interval(secs => $2::float8);

-- name: place_hold
-- Puts a lead on legal hold; false if it already was.
INSERT INTO lead_holds (lead_id, placed_by) VALUES ($1, $2)
ON CONFLICT (lead_id) DO NOTHING
RETURNING true;

-- name: release_hold
-- Lifts a lead's legal hold; false if it had none.
DELETE FROM lead_holds WHERE lead_id = $1 RETURNING true;

-- name: lead_exists
-- Whether a lead with this id exists (holds are placed on real leads only).
SELECT EXISTS (SELECT FROM leads WHERE id = $1);
