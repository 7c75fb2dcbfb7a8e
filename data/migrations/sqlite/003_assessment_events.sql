-- SPDX-License-Identifier: LGPL-2.1-or-later
-- Every status change and breach of an assessment, with its evidence, kept
-- for GET /assessments/{id}/events. The outbox is pruned once delivered;
-- this is the assessment's own history. Filled from the outbox by a trigger,
-- so it is written in the same transaction as the change.
CREATE TABLE assessment_events (
  id            TEXT    NOT NULL PRIMARY KEY,
  assessment_id TEXT    NOT NULL,
  type          TEXT    NOT NULL,
  created_at    INTEGER NOT NULL,
  payload       TEXT    NOT NULL
) STRICT;
CREATE INDEX assessment_events_idx ON assessment_events (assessment_id, created_at);

CREATE TRIGGER outbox_keeps_assessment_events AFTER INSERT ON outbox
WHEN NEW.type LIKE 'assessment.%' AND NEW.assessment_id IS NOT NULL
BEGIN
  INSERT INTO assessment_events (id, assessment_id, type, created_at, payload)
  VALUES (NEW.id, NEW.assessment_id, NEW.type, NEW.created_at, NEW.payload);
END;
