-- name: publish
-- Stores an event and notifies every app process on commit; returns its id (see 0006_events.sql).
SELECT publish_event($1::text, $2::uuid, $3::uuid, $4::uuid, $5::text);

-- name: session_live
-- Whether this session may still receive events (ended, expired, idle, suspended, revoked: no).
SELECT event_session_is_live($1::uuid);

-- name: visible_event
-- One notified event, if the subscriber's session is live and row-level security lets it see it.
SELECT l.live AS session_live, e.id, e.kind, e.subject_id, e.report_id
FROM (SELECT event_session_is_live($1::uuid) AS live) l
LEFT JOIN events e ON l.live AND e.id = $2::bigint;

-- name: replay
-- Up to $3 events after id $2 that the subscriber may see, oldest first, if its session is live.
SELECT l.live AS session_live, e.id, e.kind, e.subject_id, e.report_id
FROM (SELECT event_session_is_live($1::uuid) AS live) l
LEFT JOIN LATERAL (
    SELECT id, kind, subject_id, report_id FROM events
    WHERE id > $2::bigint
    ORDER BY id
    LIMIT $3::int
) e ON l.live
ORDER BY e.id;

-- name: ping
-- Proves the listening connection is still alive (a half-open TCP connection would not say so).
SELECT 1;
