-- How far a message's dates can be trusted (docs/decisions/041-corrected-export-dates.md):
-- 2 exact (Telegram's UTC time), 1 an export's local time read in a zone given with --tz,
-- 0 read in a guessed zone. Only the best-ranked readings of a message count, the latest of a
-- local rank, so a re-import with the right --tz corrects the dates an earlier import stored.
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS date_rank smallint NOT NULL DEFAULT 2;
COMMENT ON COLUMN public.messages.date_rank IS
    '2: exact date; 1: local export time read in a --tz zone; 0: read in a guessed zone';

-- Imports before this change did not record it: a row seen only by an import (one snapshot)
-- shows a local reading in an unrecorded zone, as the log's upcaster reads those events. A
-- rebuild gives the exact tables.
UPDATE public.messages SET date_rank = 0
WHERE source = 'import' AND first_seq = last_seq AND date_rank = 2;
