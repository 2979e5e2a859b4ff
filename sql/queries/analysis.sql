-- name: judged_leads
-- Every lead with an outcome: whether any outcome said "target gone" (a possible tip-off), and
-- which officers could read it before its first outcome (approved, window opened, not revoked
-- before it opened).
WITH judged AS (
    SELECT lead_id, bool_or(outcome = 'target_gone') AS compromised,
           min(recorded_at) AS first_outcome_at
    FROM lead_outcomes
    GROUP BY lead_id
), readers AS (
    SELECT DISTINCT s.lead_id, s.officer_id
    FROM lead_shares s JOIN judged j ON j.lead_id = s.lead_id
    WHERE (NOT s.requires_approval OR s.approved_at IS NOT NULL)
      AND s.not_before <= least(now(), j.first_outcome_at)
      AND (s.revoked_at IS NULL OR s.revoked_at > s.not_before)
)
SELECT j.lead_id, j.compromised,
       coalesce(array_agg(r.officer_id ORDER BY r.officer_id)
                    FILTER (WHERE r.officer_id IS NOT NULL), '{}') AS officers
FROM judged j LEFT JOIN readers r ON r.lead_id = j.lead_id
GROUP BY j.lead_id, j.compromised
ORDER BY j.lead_id;

-- name: officer_handles
-- The handles of every account on the vetting list.
SELECT o.account_id, a.handle FROM officers o JOIN accounts a ON a.id = o.account_id;

-- name: programme
-- Programme figures per calendar month (UTC): reports received and (of those) verified, leads
-- created, raids, arrests and victims brought to safety as officers reported them.
WITH facts AS (
    SELECT date_trunc('month', received_at AT TIME ZONE 'UTC') AS month,
           1 AS received, (status = 'verified')::int AS verified, 0 AS leads,
           0 AS raids, 0 AS arrests, 0 AS victims_safe
    FROM reports
    UNION ALL
    SELECT date_trunc('month', created_at AT TIME ZONE 'UTC'), 0, 0, 1, 0, 0, 0 FROM leads
    UNION ALL
    SELECT date_trunc('month', recorded_at AT TIME ZONE 'UTC'), 0, 0, 0,
           (outcome = 'raid_done')::int, arrests, victims_safe
    FROM lead_outcomes
)
SELECT to_char(month, 'YYYY-MM') AS month,
       sum(received)::int AS reports_received, sum(verified)::int AS reports_verified,
       sum(leads)::int AS leads, sum(raids)::int AS raids, sum(arrests)::int AS arrests,
       sum(victims_safe)::int AS victims_safe
FROM facts
GROUP BY month
ORDER BY month;
