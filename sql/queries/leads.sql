-- name: verified_count
-- How many of the given reports exist and are verified (a lead needs all of them to be).
SELECT count(*) FROM reports WHERE id = ANY($1::uuid[]) AND status = 'verified';

-- name: create
-- Stores a new lead (the investigators' ciphertext only) and returns its id and creation time.
INSERT INTO leads (created_by, ciphertext) VALUES ($1, $2) RETURNING id, created_at, status;

-- name: link_reports
-- Records which verified reports a lead was built from (investigators only can read this).
INSERT INTO lead_reports (lead_id, report_id) SELECT $1, unnest($2::uuid[]);

-- name: lead_for_update
-- A lead's status, locked while a share, an outcome or a closure changes it.
SELECT id, status FROM leads WHERE id = $1 FOR UPDATE;

-- name: set_status
-- Moves a lead along open -> shared -> actioned -> closed (the table guards the moves).
UPDATE leads SET status = $2, updated_at = now() WHERE id = $1;

-- name: lead
-- One lead for investigators, with the reports it came from.
SELECT l.id, l.status, l.created_by, l.created_at, l.ciphertext,
       coalesce((SELECT array_agg(r.report_id ORDER BY r.report_id)
                 FROM lead_reports r WHERE r.lead_id = l.id), '{}') AS report_ids
FROM leads l WHERE l.id = $1;

-- name: officer_cleared
-- Whether an officer's vetting lets them read anything now (the same test the policies apply).
SELECT officer_is_cleared($1);

-- name: officers_holding
-- The officers who hold a lead for the need-to-know limit: an unrevoked share, or one they opened.
SELECT DISTINCT s.officer_id
FROM lead_shares s
WHERE s.lead_id = $1
  AND (s.revoked_at IS NULL OR EXISTS (SELECT FROM share_accesses a WHERE a.share_id = s.id));

-- name: insert_share
-- Stores a share to one officer; nothing on a trace digest already used.
INSERT INTO lead_shares (lead_id, officer_id, created_by, not_before, expires_at,
                         directory_version, ciphertext, ciphertext_sha256, trace_digest,
                         requires_approval)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (trace_digest) DO NOTHING
RETURNING id;

-- name: shares
-- Shares for investigators, one lead's or one share, with their state by the database clock.
SELECT s.id, s.lead_id, s.officer_id, s.created_by, s.created_at, s.not_before, s.expires_at,
       s.directory_version, s.ciphertext_sha256, s.trace_digest, s.requires_approval,
       s.approved_by, s.approved_at, s.revoked_by, s.revoked_at,
       k.acknowledged_at,
       (SELECT count(*) FROM share_accesses a WHERE a.share_id = s.id) AS opens,
       CASE
           WHEN s.revoked_at IS NOT NULL THEN 'revoked'
           WHEN s.requires_approval AND s.approved_at IS NULL THEN 'pending'
           WHEN now() >= s.expires_at THEN 'expired'
           WHEN now() < s.not_before THEN 'scheduled'
           ELSE 'open'
       END AS state,
       share_is_open(s.officer_id, s.requires_approval, s.approved_at, s.revoked_at,
                     s.not_before, s.expires_at) AS readable_now
FROM lead_shares s
LEFT JOIN share_acknowledgements k ON k.share_id = s.id
WHERE ($1::uuid IS NULL OR s.lead_id = $1) AND ($2::uuid IS NULL OR s.id = $2)
ORDER BY s.created_at, s.id;

-- name: share_for_update
-- A share's approval and revocation state, locked for a decision.
SELECT id, lead_id, officer_id, created_by, requires_approval, approved_at, revoked_at,
       now() >= not_before AND now() < expires_at AS in_window
FROM lead_shares WHERE id = $1 FOR UPDATE;

-- name: approve_share
-- Approves a pending share in the second investigator's name (the table refuses its creator).
UPDATE lead_shares SET approved_by = $2, approved_at = now()
WHERE id = $1 AND approved_at IS NULL AND revoked_at IS NULL;

-- name: revoke_share
-- Revokes a share at once, in the investigator's name.
UPDATE lead_shares SET revoked_by = $2, revoked_at = now() WHERE id = $1 AND revoked_at IS NULL;

-- name: revoke_lead_shares
-- Revokes every live share of a lead (it is being closed); returns their ids.
UPDATE lead_shares SET revoked_by = $2, revoked_at = now()
WHERE lead_id = $1 AND revoked_at IS NULL
RETURNING id;

-- name: assignments
-- An officer's shares that are open now; row-level security applies the same test again.
SELECT s.id AS share_id, s.lead_id, s.not_before, s.expires_at,
       k.acknowledged_at IS NOT NULL AS acknowledged
FROM lead_shares s
LEFT JOIN share_acknowledgements k ON k.share_id = s.id
WHERE s.officer_id = $1
  AND share_is_open(s.officer_id, s.requires_approval, s.approved_at, s.revoked_at,
                    s.not_before, s.expires_at)
ORDER BY s.expires_at, s.id;

-- name: open_share
-- One share's ciphertext for its officer while open (row-level security hides it otherwise).
SELECT s.id, s.lead_id, s.not_before, s.expires_at, s.directory_version, s.ciphertext,
       s.ciphertext_sha256
FROM lead_shares s
WHERE s.id = $1 AND s.officer_id = $2
  AND share_is_open(s.officer_id, s.requires_approval, s.approved_at, s.revoked_at,
                    s.not_before, s.expires_at);

-- name: record_access
-- Writes the lead's access log line for an officer's read of a share.
INSERT INTO share_accesses (share_id, lead_id, officer_id) VALUES ($1, $2, $3);

-- name: acknowledge
-- Records an officer's acknowledgement of a share once; true if recorded now.
INSERT INTO share_acknowledgements (share_id, officer_id) VALUES ($1, $2)
ON CONFLICT (share_id) DO NOTHING
RETURNING true;

-- name: officer_holds_open_share
-- Whether this officer holds a share on this lead that is open now.
SELECT EXISTS (
    SELECT FROM lead_shares s
    WHERE s.lead_id = $1 AND s.officer_id = $2
      AND share_is_open(s.officer_id, s.requires_approval, s.approved_at, s.revoked_at,
                        s.not_before, s.expires_at));

-- name: lead_status
-- A lead's status as its officer may see it (only through an open share of theirs).
SELECT status FROM leads WHERE id = $1 FOR UPDATE;

-- name: insert_outcome
-- Stores an officer's outcome report for a lead.
INSERT INTO lead_outcomes (lead_id, officer_id, outcome, arrests, victims_safe, note_ciphertext)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, recorded_at;

-- name: outcomes
-- The outcomes reported for a lead, oldest first.
SELECT id, lead_id, officer_id, outcome, arrests, victims_safe, note_ciphertext, recorded_at
FROM lead_outcomes WHERE lead_id = $1 ORDER BY recorded_at, id;

-- name: access_log
-- Who opened a lead's shares and when, oldest first.
SELECT a.share_id, a.officer_id, acc.handle, a.accessed_at
FROM share_accesses a JOIN accounts acc ON acc.id = a.officer_id
WHERE a.lead_id = $1
ORDER BY a.accessed_at, a.id;
