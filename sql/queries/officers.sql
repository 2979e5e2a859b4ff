-- name: account_role
-- The role and status of an account that is being proposed as an officer.
SELECT role, status FROM accounts WHERE id = $1;

-- name: vetting_for_update
-- One officer's vetting row, locked for a vetting decision; `overdue` by the database clock.
SELECT account_id, status, proposed_by,
       now() >= (review_due::timestamp AT TIME ZONE 'UTC') AS overdue
FROM officers WHERE account_id = $1
FOR UPDATE;

-- name: propose
-- Puts an officer account on the vetting list, pending a second investigator's approval; returns
-- nothing if a concurrent proposal got there first.
INSERT INTO officers (account_id, unit, rank, review_due, proposed_by)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (account_id) DO NOTHING
RETURNING true;

-- name: repropose
-- Renews a suspended or lapsed vetting: it is pending again until someone else approves it.
UPDATE officers
SET unit = $2, rank = $3, review_due = $4, status = 'proposed', proposed_by = $5,
    proposed_at = now(), approved_by = NULL, approved_at = NULL
WHERE account_id = $1;

-- name: approve
-- Makes a proposed officer active in the approver's name (the table refuses the proposer).
UPDATE officers SET status = 'active', approved_by = $2, approved_at = now()
WHERE account_id = $1 AND status = 'proposed';

-- name: set_status
-- Suspends or revokes an officer's vetting, at once, in the investigator's name.
UPDATE officers SET status = $2, status_changed_by = $3, status_changed_at = now()
WHERE account_id = $1;

-- name: end_sessions
-- Ends every live session of an officer whose vetting was just suspended or revoked.
UPDATE sessions SET ended_at = now() WHERE account_id = $1 AND ended_at IS NULL;

-- name: list
-- The vetting list: who, what standing, who vetted them and when, and whether they can read now.
SELECT o.account_id, a.handle, o.unit, o.rank, o.review_due, o.status,
       o.proposed_by, o.proposed_at, o.approved_by, o.approved_at,
       o.status_changed_by, o.status_changed_at,
       now() >= (o.review_due::timestamp AT TIME ZONE 'UTC') AS review_overdue,
       officer_is_cleared(o.account_id) AS cleared
FROM officers o JOIN accounts a ON a.id = o.account_id
WHERE ($1::uuid IS NULL OR o.account_id = $1)
ORDER BY a.handle;

-- name: readable_shares
-- Every share that some officer can open right now, by the database clock.
SELECT s.id AS share_id, s.lead_id, s.officer_id, s.expires_at
FROM lead_shares s
WHERE share_is_open(s.officer_id, s.requires_approval, s.approved_at, s.revoked_at,
                    s.not_before, s.expires_at)
ORDER BY s.expires_at;

-- name: recent_alerts
-- The kinds of access alert raised on each officer since a moment, newest first.
SELECT officer_id, kind, max(raised_at) AS raised_at
FROM officer_alerts
WHERE raised_at >= $1
GROUP BY officer_id, kind
ORDER BY raised_at DESC;

-- name: open_counts
-- For the anomaly checks: this officer's opens within the burst window (this one included), and
-- earlier opens within the history window, in all and near this time of day (UTC).
SELECT
    count(*) FILTER (WHERE accessed_at > now() - make_interval(secs => $2)) AS recent,
    count(*) FILTER (WHERE accessed_at < now()
                       AND accessed_at >= now() - make_interval(days => $3)) AS history,
    count(*) FILTER (
        WHERE accessed_at < now()
          AND accessed_at >= now() - make_interval(days => $3)
          AND least(abs(extract(hour FROM accessed_at AT TIME ZONE 'UTC')
                        - extract(hour FROM now() AT TIME ZONE 'UTC')),
                    24 - abs(extract(hour FROM accessed_at AT TIME ZONE 'UTC')
                             - extract(hour FROM now() AT TIME ZONE 'UTC'))) <= $4::int
    ) AS near_this_hour
FROM share_accesses
WHERE officer_id = $1;

-- name: record_failure
-- Notes a refused share access by an officer (for the repeated-failure check).
INSERT INTO share_access_failures (officer_id, share_id) VALUES ($1, $2);

-- name: recent_failures
-- How many share accesses this officer was refused within the failure window.
SELECT count(*) FROM share_access_failures
WHERE officer_id = $1 AND failed_at > now() - make_interval(secs => $2);

-- name: raise_alert
-- Flags the calling officer, unless the same alert was raised within the window; true if raised now.
SELECT coalesce(raise_officer_alert($1, $2), false);
