-- SPDX-License-Identifier: LGPL-2.1-or-later
-- Every status change and breach of an assessment, with its evidence, kept
-- for GET /assessments/{id}/events. The outbox is pruned once delivered;
-- this is the assessment's own history. Filled from the outbox by a trigger,
-- so it is written in the same transaction as the change.
CREATE TABLE assessment_events (
  id            TEXT        NOT NULL PRIMARY KEY,
  assessment_id TEXT        NOT NULL,
  type          TEXT        NOT NULL,
  created_at    TIMESTAMPTZ NOT NULL,
  payload       TEXT        NOT NULL
);
CREATE INDEX assessment_events_idx ON assessment_events (assessment_id, created_at);

CREATE FUNCTION arb_keep_assessment_event () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.type LIKE 'assessment.%' AND NEW.assessment_id IS NOT NULL THEN
    INSERT INTO assessment_events (id, assessment_id, type, created_at, payload)
    VALUES (NEW.id, NEW.assessment_id, NEW.type, NEW.created_at, NEW.payload);
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER outbox_keeps_assessment_events AFTER INSERT ON outbox
FOR EACH ROW EXECUTE FUNCTION arb_keep_assessment_event ();
