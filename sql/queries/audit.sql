-- name: record
-- Appends one audit event in the caller's transaction and returns its id.
SELECT audit_append($1::uuid, $2::text, $3::text, $4::text, $5::text, $6::text::jsonb);

-- name: list_events
-- One page of events, newest first, keyset-paginated by id, optionally filtered.
SELECT id, occurred_at, actor_id, actor_role, action, subject_type, subject_id, detail::text AS detail
FROM audit_events
WHERE ($1::bigint IS NULL OR id < $1)
  AND ($2::text IS NULL OR action = $2)
  AND ($3::uuid IS NULL OR actor_id = $3)
ORDER BY id DESC
LIMIT $4;

-- name: take_seal_lock
-- Serialises sealers across replicas for the rest of this transaction.
SELECT pg_advisory_xact_lock(hashtext('tipline.audit.seal'));

-- name: head
-- The sealed head: highest position and its chain hash (none on an empty chain).
SELECT position, chain_hash FROM audit_chain ORDER BY position DESC LIMIT 1;

-- name: seal_horizon
-- Every committed event written below this transaction id is sealed (0012).
SELECT horizon FROM audit_seal_horizon;

-- name: snapshot_horizon
-- Every transaction below this id has ended: its committed events are visible from now on.
SELECT pg_snapshot_xmin(pg_current_snapshot());

-- name: unsealed_events
-- Committed events not yet in the chain among those written at or above a horizon, oldest id first.
SELECT e.id, e.occurred_at, e.actor_id, e.actor_role, e.action, e.subject_type, e.subject_id,
       e.detail::text AS detail
FROM audit_events e
WHERE e.xact >= $1::xid8
  AND NOT EXISTS (SELECT FROM audit_chain c WHERE c.event_id = e.id)
ORDER BY e.id
LIMIT $2;

-- name: advance_seal_horizon
-- Records that every committed event below this transaction id is now sealed.
UPDATE audit_seal_horizon SET horizon = greatest(horizon, $1::xid8);

-- name: count_unsealed
-- How many committed events wait for the sealer.
SELECT count(*) FROM audit_events e
WHERE NOT EXISTS (SELECT FROM audit_chain c WHERE c.event_id = e.id);

-- name: append_chain
-- Appends sealed positions in array order (the link trigger checks each against the previous).
INSERT INTO audit_chain (position, event_id, entry_hash, chain_hash)
SELECT position, event_id, entry_hash, chain_hash
FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])
    WITH ORDINALITY AS t (position, event_id, entry_hash, chain_hash, ordinal)
ORDER BY ordinal;

-- name: append_checkpoint
-- Records a signed head.
INSERT INTO audit_checkpoints (position, chain_hash, signature) VALUES ($1, $2, $3);

-- name: checkpoints
-- Every signed head, in chain order.
SELECT position, chain_hash, signature FROM audit_checkpoints ORDER BY position;

-- name: latest_checkpoint
-- The most recent signed head, for export to a separate system.
SELECT position, chain_hash, signature, signed_at FROM audit_checkpoints
ORDER BY position DESC LIMIT 1;

-- name: chain_with_events
-- The whole chain in order, each position with the event it seals (NULL if that row is gone).
SELECT c.position, c.event_id, c.entry_hash, c.chain_hash,
       e.id, e.occurred_at, e.actor_id, e.actor_role, e.action, e.subject_type, e.subject_id,
       e.detail::text AS detail
FROM audit_chain c
LEFT JOIN audit_events e ON e.id = c.event_id
ORDER BY c.position;
