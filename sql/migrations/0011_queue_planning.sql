-- The queue at a million reports (issue 4 benchmark): the same rule for who reads a report,
-- written so the planner can estimate it.
--
-- The planner cannot evaluate `current_app_role() = 'investigator'` while planning, so in the
-- first policy (0005) it guessed that clause true for 0.5 % of rows and the OR around it for a
-- few percent. Believing a filter would leave few rows, it chose bitmap scans followed by a sort
-- of everything that matched: 0.3-0.5 s for one operative's page, 25 ms for a deep page of one
-- status. A CASE is estimated at one half, which is close enough for the ordered index scans
-- (reports_queue_idx, reports_status_queue_idx, reports_operative_idx) that stop after one page:
-- well under 1 ms for each of those pages. Who sees what is unchanged: investigators every
-- report, an operative their own, anyone else and any duress session nothing.
ALTER POLICY reports_read ON reports
    USING (NOT current_is_duress()
           AND CASE current_app_role()
                   WHEN 'investigator' THEN true
                   WHEN 'operative' THEN operative_id = current_account_id()
                   ELSE false
               END);
