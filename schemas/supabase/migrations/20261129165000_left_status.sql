-- A group this crawler left shows the status 'left' (it was 'inactive'): the console and the API
-- name the four states a group can be in as initializing, active, error and left.
ALTER TABLE public.crawler_status DROP CONSTRAINT IF EXISTS crawler_status_status_check;
UPDATE public.crawler_status SET status = 'left' WHERE status = 'inactive';
ALTER TABLE public.crawler_status ADD CONSTRAINT crawler_status_status_check
    CHECK (status IN ('active', 'left', 'error', 'initializing'));
