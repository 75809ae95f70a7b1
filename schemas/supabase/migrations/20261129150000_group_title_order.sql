-- The console lists groups by title, a keyset page at a time:
--   ORDER BY coalesce(title, ''), chat_id  WHERE (coalesce(title, ''), chat_id) > (cursor)
-- With this index a page reads its 101 rows in order instead of sorting every group.
CREATE INDEX IF NOT EXISTS telegram_groups_title_order_idx
    ON public.telegram_groups ((coalesce(title, '')), chat_id);
