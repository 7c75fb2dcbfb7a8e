-- SPDX-License-Identifier: LGPL-2.1-or-later
-- The assessment lifecycle's counters (trading days, last fill, best day's
-- profit), one JSON object written with every assessment row.
ALTER TABLE assessments ADD COLUMN lifecycle TEXT;
