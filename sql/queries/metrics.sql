-- name: report_queue_depth
-- How many reports wait for triage (status new); a count only, never which or whose.
SELECT count(*) FROM reports WHERE status = 'new';

-- name: audit_backlog
-- Committed audit events the sealer has not chained yet, and the age of the oldest in seconds.
SELECT count(*) AS unsealed,
       coalesce(extract(epoch FROM clock_timestamp() - min(e.occurred_at)), 0)::float8 AS oldest_age_s
FROM audit_events e
WHERE e.xact >= (SELECT horizon FROM audit_seal_horizon)
  AND NOT EXISTS (SELECT FROM audit_chain c WHERE c.event_id = e.id);

-- name: login_failures
-- Events ever recorded for each of the given audit actions (append-only, so these only grow).
SELECT action, count(*) AS total
FROM audit_events
WHERE action = ANY($1::text[])
GROUP BY action;
