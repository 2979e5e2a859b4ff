-- Vetted officers and need-to-know lead sharing (DESIGN §1-2, §5; issue 5).
--
-- The risk: a brothel owner tipped off by an official who saw a lead. So an officer reads a
-- lead only while four things hold at once, and the database checks all of them with its own
-- clock on every read: a second investigator vetted the officer and the vetting is neither
-- suspended, revoked nor past its review date; the share to that officer is approved (dual
-- control), not revoked, and inside its window (not_before <= now() < expires_at). Nothing is
-- cached in a token, so suspending an officer or revoking a share takes effect on the very next
-- statement (SEC-AUTHZ-05).
--
-- Leads carry no operative identity: which reports a lead came from is kept in `lead_reports`,
-- which only investigators can read. Share ciphertext is encrypted by the investigator's client
-- to one officer; the server keeps the digest of the share's trace code, never the code.

CREATE TABLE officers (
    account_id        uuid PRIMARY KEY REFERENCES accounts (id),
    unit              text NOT NULL CHECK (length(unit) BETWEEN 1 AND 100),
    rank              text NOT NULL CHECK (length(rank) BETWEEN 1 AND 60),
    -- The vetting lapses at 00:00 UTC on this day unless it is renewed (re-proposed, approved).
    review_due        date NOT NULL,
    status            text NOT NULL DEFAULT 'proposed'
                          CHECK (status IN ('proposed', 'active', 'suspended', 'revoked')),
    proposed_by       uuid NOT NULL REFERENCES accounts (id),
    proposed_at       timestamptz NOT NULL DEFAULT now(),
    approved_by       uuid REFERENCES accounts (id),
    approved_at       timestamptz,
    status_changed_by uuid REFERENCES accounts (id),
    status_changed_at timestamptz,
    -- Two-person rule (SEC-AUTHZ-09): whoever proposed can never be the one who approved.
    CHECK (approved_by IS NULL OR approved_by <> proposed_by),
    CHECK (status <> 'active' OR (approved_by IS NOT NULL AND approved_at IS NOT NULL))
);

CREATE TABLE leads (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_by  uuid NOT NULL REFERENCES accounts (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- The investigators' own copy of the lead text, age-encrypted to every investigator.
    ciphertext  bytea NOT NULL,
    status      text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'shared', 'actioned', 'closed')),
    updated_at  timestamptz
);

-- Which verified reports a lead was built from: the link back to operatives, investigators only.
CREATE TABLE lead_reports (
    lead_id   uuid NOT NULL REFERENCES leads (id),
    report_id uuid NOT NULL REFERENCES reports (id),
    PRIMARY KEY (lead_id, report_id)
);

CREATE TABLE lead_shares (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id           uuid NOT NULL REFERENCES leads (id),
    officer_id        uuid NOT NULL REFERENCES officers (account_id),
    created_by        uuid NOT NULL REFERENCES accounts (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    not_before        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    directory_version integer NOT NULL CHECK (directory_version >= 1),
    ciphertext        bytea NOT NULL,
    ciphertext_sha256 text NOT NULL CHECK (ciphertext_sha256 ~ '^[0-9a-f]{64}$'),
    -- SHA-256 of the random trace code inside the plaintext; a leaked copy names its share.
    trace_digest      text NOT NULL UNIQUE CHECK (trace_digest ~ '^[0-9a-f]{64}$'),
    -- Dual control as it was configured when the share was made; it cannot be switched off
    -- for a share afterwards (no UPDATE grant on the column).
    requires_approval boolean NOT NULL,
    approved_by       uuid REFERENCES accounts (id),
    approved_at       timestamptz,
    revoked_by        uuid REFERENCES accounts (id),
    revoked_at        timestamptz,
    CHECK (not_before < expires_at),
    CHECK (approved_by IS NULL OR approved_by <> created_by),
    CHECK ((approved_by IS NULL) = (approved_at IS NULL)),
    CHECK ((revoked_by IS NULL) = (revoked_at IS NULL))
);
CREATE INDEX lead_shares_lead_idx ON lead_shares (lead_id);
CREATE INDEX lead_shares_officer_idx ON lead_shares (officer_id, expires_at);

CREATE TABLE share_acknowledgements (
    share_id        uuid PRIMARY KEY REFERENCES lead_shares (id),
    officer_id      uuid NOT NULL REFERENCES officers (account_id),
    acknowledged_at timestamptz NOT NULL DEFAULT now()
);

-- The lead's access log: every time an officer opened a share's ciphertext.
CREATE TABLE share_accesses (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    share_id    uuid NOT NULL REFERENCES lead_shares (id),
    lead_id     uuid NOT NULL REFERENCES leads (id),
    officer_id  uuid NOT NULL REFERENCES officers (account_id),
    accessed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX share_accesses_lead_idx ON share_accesses (lead_id, accessed_at);
CREATE INDEX share_accesses_officer_idx ON share_accesses (officer_id, accessed_at);

-- Refused attempts by an officer to reach a share (not theirs, not open, not there): repeated
-- ones are an anomaly. The id asked for is kept; it may not exist.
CREATE TABLE share_access_failures (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    officer_id uuid NOT NULL REFERENCES accounts (id),
    share_id   uuid,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX share_access_failures_officer_idx ON share_access_failures (officer_id, failed_at);

-- Alerts raised on an officer's access pattern; a flag investigators see in the vetting list.
CREATE TABLE officer_alerts (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    officer_id uuid NOT NULL REFERENCES accounts (id),
    kind       text NOT NULL CHECK (kind IN ('unusual_hour', 'burst', 'failed_checks')),
    raised_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX officer_alerts_officer_idx ON officer_alerts (officer_id, kind, raised_at);

CREATE TABLE lead_outcomes (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lead_id         uuid NOT NULL REFERENCES leads (id),
    officer_id      uuid NOT NULL REFERENCES officers (account_id),
    outcome         text NOT NULL CHECK (outcome IN
                        ('raid_done', 'target_gone', 'referred_to_aftercare', 'no_action')),
    arrests         integer NOT NULL DEFAULT 0 CHECK (arrests BETWEEN 0 AND 10000),
    victims_safe    integer NOT NULL DEFAULT 0 CHECK (victims_safe BETWEEN 0 AND 10000),
    -- Free text, age-encrypted by the officer's client to every investigator.
    note_ciphertext bytea,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lead_outcomes_lead_idx ON lead_outcomes (lead_id);

-- A lead is built from verified reports only; checked here as well as in the service, so no
-- path can link an unverified (possibly planted) report to a lead shared with police.
CREATE FUNCTION lead_reports_only_verified() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = tipline, pg_catalog
    AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM reports WHERE id = NEW.report_id AND status = 'verified') THEN
        RAISE EXCEPTION 'a lead is built from verified reports only'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER lead_reports_only_verified BEFORE INSERT ON lead_reports
    FOR EACH ROW EXECUTE FUNCTION lead_reports_only_verified();

-- Vetting changes are made in the name of the person making them and follow the workflow:
-- only a proposal sets the terms (unit, rank, review date), only an approval by someone else
-- makes an officer active, so a suspended or lapsed officer cannot be switched back on without
-- a new proposal and a second investigator; revocation is final. The maintenance role (no
-- request context) is exempt: the app's role sees no row without a context anyway.
CREATE FUNCTION officers_guard_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = tipline, pg_catalog
    AS $$
DECLARE
    me uuid := current_account_id();
    same_terms boolean := (NEW.unit, NEW.rank, NEW.review_due, NEW.proposed_by, NEW.proposed_at)
                          IS NOT DISTINCT FROM
                          (OLD.unit, OLD.rank, OLD.review_due, OLD.proposed_by, OLD.proposed_at);
    same_approval boolean := (NEW.approved_by, NEW.approved_at)
                             IS NOT DISTINCT FROM (OLD.approved_by, OLD.approved_at);
    lapsed boolean := now() >= (OLD.review_due::timestamp AT TIME ZONE 'UTC');
BEGIN
    IF current_app_role() IS NULL THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'revoked' THEN
        RAISE EXCEPTION 'a revoked officer stays revoked' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT (
        -- approval: proposed -> active, by someone else (the CHECK), in their own name
        (OLD.status = 'proposed' AND NEW.status = 'active' AND same_terms
         AND NEW.approved_by = me AND NEW.approved_at IS NOT NULL
         AND NEW.status_changed_by IS NOT DISTINCT FROM OLD.status_changed_by)
        -- suspension or revocation, at once, by one investigator in their own name
        OR (NEW.status IN ('suspended', 'revoked') AND NEW.status <> OLD.status
            AND same_terms AND same_approval AND NEW.status_changed_by = me)
        -- renewal: a suspended or lapsed vetting becomes a new proposal, in the proposer's name
        OR (NEW.status = 'proposed'
            AND (OLD.status = 'suspended' OR (OLD.status = 'active' AND lapsed))
            AND NEW.proposed_by = me AND NEW.approved_by IS NULL AND NEW.approved_at IS NULL)
    ) THEN
        RAISE EXCEPTION 'vetting change refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- History is stamped by the database clock, never by the caller.
    IF NEW.approved_at IS DISTINCT FROM OLD.approved_at AND NEW.approved_at IS NOT NULL THEN
        NEW.approved_at := now();
    END IF;
    IF NEW.proposed_at IS DISTINCT FROM OLD.proposed_at THEN
        NEW.proposed_at := now();
    END IF;
    IF NEW.status_changed_by IS DISTINCT FROM OLD.status_changed_by
       OR NEW.status_changed_at IS DISTINCT FROM OLD.status_changed_at THEN
        NEW.status_changed_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER officers_guard_update BEFORE UPDATE ON officers
    FOR EACH ROW EXECUTE FUNCTION officers_guard_update();

-- Approval happens once, by someone else, in their own name; revocation is one-way.
CREATE FUNCTION lead_shares_guard_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = tipline, pg_catalog
    AS $$
BEGIN
    IF (OLD.revoked_at IS NOT NULL
        AND (NEW.revoked_at, NEW.revoked_by) IS DISTINCT FROM (OLD.revoked_at, OLD.revoked_by))
       OR (OLD.approved_at IS NOT NULL
           AND (NEW.approved_at, NEW.approved_by) IS DISTINCT FROM (OLD.approved_at, OLD.approved_by))
       OR (NEW.approved_by IS DISTINCT FROM OLD.approved_by
           AND NEW.approved_by IS DISTINCT FROM current_account_id())
       OR (NEW.revoked_by IS DISTINCT FROM OLD.revoked_by
           AND NEW.revoked_by IS DISTINCT FROM current_account_id()) THEN
        RAISE EXCEPTION 'share change refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Stamped by the database clock: a backdated revocation would hide from the exposure
    -- analysis that the officer could read the lead.
    IF NEW.approved_at IS DISTINCT FROM OLD.approved_at THEN
        NEW.approved_at := now();
    END IF;
    IF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        NEW.revoked_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER lead_shares_guard_update BEFORE UPDATE ON lead_shares
    FOR EACH ROW EXECUTE FUNCTION lead_shares_guard_update();

-- An officer may move a lead they hold an open share on to 'actioned' (by reporting an
-- outcome), and nothing else; investigators move it along its workflow.
CREATE FUNCTION leads_guard_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = tipline, pg_catalog
    AS $$
BEGIN
    IF (OLD.status, NEW.status) NOT IN (('open', 'shared'), ('shared', 'actioned'),
                                        ('open', 'closed'), ('shared', 'closed'),
                                        ('actioned', 'closed'))
       OR NEW.ciphertext IS DISTINCT FROM OLD.ciphertext
       OR (current_app_role() = 'officer' AND NEW.status <> 'actioned') THEN
        RAISE EXCEPTION 'lead change refused' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER leads_guard_update BEFORE UPDATE ON leads
    FOR EACH ROW EXECUTE FUNCTION leads_guard_update();

-- Whether an officer's vetting lets them read anything right now, by the database clock. An
-- officer past the review date is treated exactly like a suspended one. Runs under the caller's
-- row-level security: an officer sees only their own vetting row, an investigator every row.
CREATE FUNCTION officer_is_cleared(p_officer uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = tipline, pg_catalog
    AS $$
    SELECT EXISTS (
        SELECT FROM officers o
        JOIN accounts a ON a.id = o.account_id
        WHERE o.account_id = p_officer
          AND o.status = 'active'
          AND a.status = 'active'
          AND now() < (o.review_due::timestamp AT TIME ZONE 'UTC'))
$$;

-- Whether a share can be opened right now, by the database clock, whoever asks.
CREATE FUNCTION share_is_open(p_officer uuid, p_requires_approval boolean,
                              p_approved_at timestamptz, p_revoked_at timestamptz,
                              p_not_before timestamptz, p_expires_at timestamptz) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = tipline, pg_catalog
    AS $$
    SELECT p_revoked_at IS NULL
           AND (NOT p_requires_approval OR p_approved_at IS NOT NULL)
           AND p_not_before <= now() AND now() < p_expires_at
           AND officer_is_cleared(p_officer)
$$;

-- Ending a suspended or revoked officer's sessions is an investigator's act (admins manage
-- accounts, investigators vet officers); these policies give investigators exactly that reach:
-- the sessions of accounts on the vetting list, nobody else's.
CREATE POLICY sessions_investigator_vetted_read ON sessions FOR SELECT
    USING (current_app_role() = 'investigator' AND NOT current_is_duress()
           AND EXISTS (SELECT FROM officers o WHERE o.account_id = sessions.account_id));
CREATE POLICY sessions_investigator_vetted_end ON sessions FOR UPDATE
    USING (current_app_role() = 'investigator' AND NOT current_is_duress()
           AND EXISTS (SELECT FROM officers o WHERE o.account_id = sessions.account_id));

-- A new officer share is announced to that officer (ids only).
ALTER TABLE events DROP CONSTRAINT events_kind_check;
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('report.received', 'report.status_changed', 'message.received',
                    'share.available'));

GRANT SELECT, INSERT ON officers TO tipline_app;
GRANT UPDATE (unit, rank, review_due, status, proposed_by, proposed_at, approved_by, approved_at,
              status_changed_by, status_changed_at) ON officers TO tipline_app;
GRANT SELECT, INSERT ON leads TO tipline_app;
GRANT UPDATE (status, updated_at) ON leads TO tipline_app;
GRANT SELECT, INSERT ON lead_reports TO tipline_app;
GRANT SELECT, INSERT ON lead_shares TO tipline_app;
GRANT UPDATE (approved_by, approved_at, revoked_by, revoked_at) ON lead_shares TO tipline_app;
GRANT SELECT, INSERT ON share_acknowledgements, share_accesses, share_access_failures,
                        officer_alerts, lead_outcomes TO tipline_app;
GRANT EXECUTE ON FUNCTION officer_is_cleared(uuid),
                          share_is_open(uuid, boolean, timestamptz, timestamptz, timestamptz,
                                        timestamptz) TO tipline_app;

ALTER TABLE officers ENABLE ROW LEVEL SECURITY;
ALTER TABLE officers FORCE ROW LEVEL SECURITY;
ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
ALTER TABLE leads FORCE ROW LEVEL SECURITY;
ALTER TABLE lead_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_reports FORCE ROW LEVEL SECURITY;
ALTER TABLE lead_shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_shares FORCE ROW LEVEL SECURITY;
ALTER TABLE share_acknowledgements ENABLE ROW LEVEL SECURITY;
ALTER TABLE share_acknowledgements FORCE ROW LEVEL SECURITY;
ALTER TABLE share_accesses ENABLE ROW LEVEL SECURITY;
ALTER TABLE share_accesses FORCE ROW LEVEL SECURITY;
ALTER TABLE share_access_failures ENABLE ROW LEVEL SECURITY;
ALTER TABLE share_access_failures FORCE ROW LEVEL SECURITY;
ALTER TABLE officer_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE officer_alerts FORCE ROW LEVEL SECURITY;
ALTER TABLE lead_outcomes ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_outcomes FORCE ROW LEVEL SECURITY;

-- Vetting: investigators see and change it (in their own name, by the trigger above); an
-- officer sees only their own row, which the visibility functions read. Admins see nothing.
CREATE POLICY officers_read ON officers FOR SELECT
    USING (NOT current_is_duress()
           AND (current_app_role() = 'investigator'
                OR (current_app_role() = 'officer' AND account_id = current_account_id())));
CREATE POLICY officers_propose ON officers FOR INSERT
    WITH CHECK (current_app_role() = 'investigator' AND NOT current_is_duress()
                AND proposed_by = current_account_id() AND status = 'proposed'
                AND approved_by IS NULL);
CREATE POLICY officers_change ON officers FOR UPDATE
    USING (current_app_role() = 'investigator' AND NOT current_is_duress());

-- A share is visible to investigators, and to its own officer only while it is open.
CREATE POLICY lead_shares_read ON lead_shares FOR SELECT
    USING (NOT current_is_duress()
           AND (current_app_role() = 'investigator'
                OR (current_app_role() = 'officer'
                    AND officer_id = current_account_id()
                    AND share_is_open(officer_id, requires_approval, approved_at, revoked_at,
                                      not_before, expires_at))));
CREATE POLICY lead_shares_create ON lead_shares FOR INSERT
    WITH CHECK (current_app_role() = 'investigator' AND NOT current_is_duress()
                AND created_by = current_account_id()
                AND approved_by IS NULL AND revoked_by IS NULL);
CREATE POLICY lead_shares_change ON lead_shares FOR UPDATE
    USING (current_app_role() = 'investigator' AND NOT current_is_duress());

-- Leads: investigators; an officer sees a lead only through an open share of theirs on it
-- (the subquery runs under the officer's own policy above).
CREATE POLICY leads_read ON leads FOR SELECT
    USING (NOT current_is_duress()
           AND (current_app_role() = 'investigator'
                OR (current_app_role() = 'officer'
                    AND EXISTS (SELECT FROM lead_shares s WHERE s.lead_id = leads.id))));
CREATE POLICY leads_create ON leads FOR INSERT
    WITH CHECK (current_app_role() = 'investigator' AND NOT current_is_duress()
                AND created_by = current_account_id() AND status = 'open');
CREATE POLICY leads_change ON leads FOR UPDATE
    USING (NOT current_is_duress()
           AND (current_app_role() = 'investigator'
                OR (current_app_role() = 'officer'
                    AND EXISTS (SELECT FROM lead_shares s WHERE s.lead_id = leads.id))));

CREATE POLICY lead_reports_investigators ON lead_reports
    USING (current_app_role() = 'investigator' AND NOT current_is_duress())
    WITH CHECK (current_app_role() = 'investigator' AND NOT current_is_duress());

CREATE POLICY share_acknowledgements_read ON share_acknowledgements FOR SELECT
    USING (NOT current_is_duress()
           AND (current_app_role() = 'investigator' OR officer_id = current_account_id()));
CREATE POLICY share_acknowledgements_ack ON share_acknowledgements FOR INSERT
    WITH CHECK (current_app_role() = 'officer' AND officer_id = current_account_id()
                AND EXISTS (SELECT FROM lead_shares s
                            WHERE s.id = share_id AND s.officer_id = current_account_id()));

-- The access log: written by the officer's own read (only of a share open to them), read by
-- investigators; an officer reads their own history for the anomaly checks.
CREATE POLICY share_accesses_read ON share_accesses FOR SELECT
    USING (NOT current_is_duress()
           AND (current_app_role() = 'investigator' OR officer_id = current_account_id()));
CREATE POLICY share_accesses_record ON share_accesses FOR INSERT
    WITH CHECK (current_app_role() = 'officer' AND officer_id = current_account_id()
                AND EXISTS (SELECT FROM lead_shares s
                            WHERE s.id = share_id AND s.lead_id = share_accesses.lead_id
                              AND s.officer_id = current_account_id()));

CREATE POLICY share_access_failures_read ON share_access_failures FOR SELECT
    USING (current_app_role() = 'investigator' OR officer_id = current_account_id());
CREATE POLICY share_access_failures_record ON share_access_failures FOR INSERT
    WITH CHECK (current_app_role() = 'officer' AND officer_id = current_account_id());

-- An officer's own behaviour raises an alert, but the officer must never learn of it: an
-- officer who is leaking would stop once flagged. Only investigators read alerts; the
-- officer's request raises one through raise_officer_alert, whose de-duplication reads as the
-- owner (the only policy for that role, and only inside that function).
CREATE POLICY officer_alerts_read ON officer_alerts FOR SELECT
    USING (current_app_role() = 'investigator' AND NOT current_is_duress());
CREATE POLICY officer_alerts_dedupe ON officer_alerts FOR SELECT TO tipline_owner
    USING (true);
CREATE POLICY officer_alerts_raise ON officer_alerts FOR INSERT
    WITH CHECK (current_app_role() = 'officer' AND officer_id = current_account_id());

-- Flags the calling officer, unless the same alert was raised within the window; true if raised
-- now. Only ever for the officer whose context runs it (the insert policy still applies).
CREATE FUNCTION raise_officer_alert(p_kind text, p_dedupe_s double precision) RETURNS boolean
    LANGUAGE sql
    SECURITY DEFINER
    SET search_path = tipline, pg_catalog
    AS $$
    INSERT INTO officer_alerts (officer_id, kind)
    SELECT current_account_id(), p_kind
    WHERE current_app_role() = 'officer'
      AND NOT EXISTS (SELECT FROM officer_alerts
                      WHERE officer_id = current_account_id() AND kind = p_kind
                        AND raised_at > now() - make_interval(secs => p_dedupe_s))
    RETURNING true;
$$;
REVOKE ALL ON FUNCTION raise_officer_alert(text, double precision) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION raise_officer_alert(text, double precision) TO tipline_app;

-- Outcomes: reported by an officer holding an open share on the lead; read by investigators.
CREATE POLICY lead_outcomes_read ON lead_outcomes FOR SELECT
    USING (NOT current_is_duress()
           AND (current_app_role() = 'investigator' OR officer_id = current_account_id()));
CREATE POLICY lead_outcomes_report ON lead_outcomes FOR INSERT
    WITH CHECK (current_app_role() = 'officer' AND officer_id = current_account_id()
                AND EXISTS (SELECT FROM lead_shares s
                            WHERE s.lead_id = lead_outcomes.lead_id
                              AND s.officer_id = current_account_id()));
