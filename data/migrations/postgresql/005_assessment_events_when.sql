-- SPDX-License-Identifier: LGPL-2.1-or-later
-- The trigger that keeps assessment events (003) now says in its WHEN
-- which outbox rows it wants. Before, PL/pgSQL ran for every outbox row
-- (three per order) only to find most were not assessment events; with the
-- condition in WHEN, PostgreSQL tests it without calling the function or
-- queueing an after-trigger event. SQLite's trigger always had its WHEN.
DROP TRIGGER outbox_keeps_assessment_events ON outbox;
CREATE TRIGGER outbox_keeps_assessment_events AFTER INSERT ON outbox
FOR EACH ROW WHEN (NEW.type LIKE 'assessment.%' AND NEW.assessment_id IS NOT NULL)
EXECUTE FUNCTION arb_keep_assessment_event ();
