-- The sealer's search for unsealed events, in time proportional to what is new rather than to
-- the whole log. The first search (0002) was an anti-join of every event against the chain: at
-- a million events, 0.7 s of CPU on every pass, growing with the log forever.
--
-- Events commit out of id order, so "ids above the last sealed one" would miss a slow
-- transaction's event. Transaction ids give an exact bound instead. Each event records the
-- transaction that wrote it (set by the stamp trigger, never by the caller: an event written
-- with a forged old transaction id would hide from the sealer). A pass first reads the horizon,
-- pg_snapshot_xmin(pg_current_snapshot()): every transaction below it has ended, so each of its
-- committed events is visible to the pass's search and gets sealed by it. Once a pass has
-- sealed everything it found, no unsealed committed event can remain below that horizon, and
-- the next pass searches only events whose transaction is at or above it.

ALTER TABLE audit_events ADD COLUMN xact xid8 NOT NULL DEFAULT '0'::xid8;
CREATE INDEX audit_events_xact_idx ON audit_events (xact);

CREATE OR REPLACE FUNCTION audit_events_stamp() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM currval(pg_get_serial_sequence('tipline.audit_events', 'id')) THEN
        RAISE EXCEPTION 'audit event ids come from the sequence'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.occurred_at := clock_timestamp();
    NEW.xact := pg_current_xact_id();
    RETURN NEW;
END
$$;

-- One row: every committed event whose transaction id is below `horizon` is sealed. It starts
-- at 0, so the first pass after this migration searches the whole log once.
CREATE TABLE audit_seal_horizon (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    horizon   xid8 NOT NULL
);
INSERT INTO audit_seal_horizon (horizon) VALUES ('0'::xid8);

GRANT SELECT ON audit_seal_horizon TO tipline_app;
GRANT UPDATE (horizon) ON audit_seal_horizon TO tipline_app;
ALTER TABLE audit_seal_horizon ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_seal_horizon FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_seal_horizon_sealer ON audit_seal_horizon
    USING (current_app_role() = 'auditor')
    WITH CHECK (current_app_role() = 'auditor');

-- The horizon only moves forward.
CREATE FUNCTION audit_seal_horizon_forward() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.horizon < OLD.horizon THEN
        RAISE EXCEPTION 'the seal horizon only moves forward'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_seal_horizon_forward BEFORE UPDATE ON audit_seal_horizon
    FOR EACH ROW EXECUTE FUNCTION audit_seal_horizon_forward();
