-- SPDX-License-Identifier: LGPL-2.1-or-later
-- The outbox relay (doc/outbox.md). Pruning looks for rows older than the
-- retention: a range of this index instead of a scan of the whole outbox.
-- The relay's other reads walk the primary key (pos) and probe
-- outbox_delivery by its primary key (event_id, sink).
CREATE INDEX outbox_created_idx ON outbox (created_at);
