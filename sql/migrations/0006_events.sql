-- Live events (DESIGN §4, issue 4 item 5): `GET /v1/events` streams ids of things that changed
-- to whoever may see them. A row carries ids only, never content: a seized database or a seized
-- phone's event stream says that something happened to a report, never what.
--
-- Every app process LISTENs on the channel 'tipline_events'; publishing notifies it with the
-- event id in the publisher's transaction, so an event reaches every replica, and only on commit.
-- Each subscriber then reads the row under its own RLS context: the policy below, not the
-- notification, decides who sees what.

CREATE SEQUENCE events_id_seq AS bigint;

CREATE TABLE events (
    -- Drawn by the trigger below, in commit order: a client resuming with Last-Event-ID N must
    -- be able to trust that no event with an id <= N can still appear.
    id               bigint PRIMARY KEY,
    created_at       timestamptz NOT NULL DEFAULT now(),
    kind             text NOT NULL
        CHECK (kind IN ('report.received', 'report.status_changed', 'message.received')),
    subject_id       uuid NOT NULL,
    report_id        uuid NOT NULL,
    audience_account uuid,
    audience_role    text CHECK (audience_role IN ('investigator', 'officer', 'operative', 'admin')),
    CHECK ((audience_account IS NULL) <> (audience_role IS NULL))
);
ALTER SEQUENCE events_id_seq OWNED BY events.id;

CREATE INDEX events_audience_account_idx ON events (audience_account, id)
    WHERE audience_account IS NOT NULL;
CREATE INDEX events_audience_role_idx ON events (audience_role, id)
    WHERE audience_role IS NOT NULL;

-- A sequence hands out ids in the order transactions ask, not the order they commit: event 7
-- could commit after event 8 has been streamed, and a client that reconnects with
-- Last-Event-ID 8 would never get 7. Drawing the id under a transaction-scoped lock makes id
-- order equal commit order among publishers. NOTIFY already serialises the commits of notifying
-- transactions (async.c PreCommit_Notify), so the extra cost is the work a transaction does
-- after publishing, which is why publish() must be its last statement.
--
-- A duress session must look normal and change nothing (DESIGN §5): its event is dropped here
-- silently, because an error would show the coercer that something is different.
CREATE FUNCTION events_stamp() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tipline.events'));
    NEW.id := nextval('tipline.events_id_seq');
    NEW.created_at := now();
    IF current_is_duress() THEN
        RETURN NULL;
    END IF;
    -- Delivered only if and when this transaction commits.
    PERFORM pg_notify('tipline_events', NEW.id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER events_stamp BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_stamp();

-- One round trip that returns the new id without INSERT ... RETURNING, which row-level
-- security would refuse to a publisher that may write an event but not read it (an operative
-- notifying investigators). Under duress the id is drawn but nothing is stored.
CREATE FUNCTION publish_event(p_kind text, p_subject_id uuid, p_report_id uuid,
                              p_audience_account uuid, p_audience_role text) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO tipline.events (kind, subject_id, report_id, audience_account, audience_role)
    VALUES (p_kind, p_subject_id, p_report_id, p_audience_account, p_audience_role);
    RETURN currval('tipline.events_id_seq');
END
$$;

-- Whether a session may still receive events: the conditions of identity.authenticate, without
-- touching the idle timer (a background stream is not the holder's activity, so it must not
-- keep an idle session alive) and without a DPoP proof (a stream has only the one it opened
-- with). Runs under the subscriber's own RLS context, which sees its own session, account and
-- device rows.
CREATE FUNCTION event_session_is_live(p_session_id uuid) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT EXISTS (
        SELECT FROM tipline.sessions s
        JOIN tipline.accounts a ON a.id = s.account_id
        JOIN tipline.devices d ON d.id = s.device_id
        WHERE s.id = p_session_id
          AND s.ended_at IS NULL
          AND now() < s.expires_at
          AND now() < s.last_seen_at + s.idle_timeout
          AND a.status = 'active'
          AND d.revoked_at IS NULL)
$$;

GRANT SELECT, INSERT ON events TO tipline_app;
-- The trigger draws ids as the publisher; USAGE allows nextval/currval, not setval.
GRANT USAGE ON SEQUENCE events_id_seq TO tipline_app;
GRANT EXECUTE ON FUNCTION publish_event(text, uuid, uuid, uuid, text),
                          event_session_is_live(uuid) TO tipline_app;

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;

-- An account sees the events addressed to it or to its role; a duress session sees none.
CREATE POLICY events_read ON events FOR SELECT
    USING (NOT current_is_duress()
           AND (audience_account = current_account_id()
                OR audience_role = current_app_role()));
-- Only people publish, and only within what their work needs: anyone may tell the
-- investigators or themselves; only an investigator may address another account or role
-- (a reply to an operative, a status change).
CREATE POLICY events_publish ON events FOR INSERT
    WITH CHECK (current_account_id() IS NOT NULL
                AND NOT current_is_duress()
                AND (current_app_role() = 'investigator'
                     OR audience_role = 'investigator'
                     OR audience_account = current_account_id()));
