-- The edits seen per message (distinct Telegram edit dates): messages.edit_count counts these rows
-- (docs/decisions/019-edit-count-counts-edit-dates.md). A formatting-only edit counts; a -> b -> a
-- counts twice.
-- Statements between the markers are replayed into a rebuild's schema (projector/postgres/schema.py).

-- projector:ddl:begin
CREATE TABLE IF NOT EXISTS public.message_edits (
    chat_id     bigint NOT NULL,
    message_id  bigint NOT NULL,
    edit_date   timestamptz NOT NULL,
    PRIMARY KEY (chat_id, message_id, edit_date)
);
-- projector:ddl:end

-- Edits already projected: the edit dates their versions recorded (a rebuild recounts exactly).
INSERT INTO public.message_edits (chat_id, message_id, edit_date)
SELECT DISTINCT chat_id, message_id, edit_date FROM public.message_versions WHERE edit_date IS NOT NULL
ON CONFLICT DO NOTHING;

-- Supabase: the table is projector bookkeeping, not for readers (RLS on, no grants).
CREATE OR REPLACE FUNCTION public.projector_supabase_setup() RETURNS void LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon')
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        FOREACH t IN ARRAY ARRAY['telegram_groups', 'messages', 'message_versions', 'crawler_status'] LOOP
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('GRANT SELECT ON public.%I TO authenticated', t);
            EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_read', t);
            EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO authenticated USING (true)',
                           t || '_read', t);
        END LOOP;
        FOREACH t IN ARRAY ARRAY['pending_deletes', 'pending_chat_deletes', 'message_edits'] LOOP
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('REVOKE ALL ON public.%I FROM anon, authenticated', t);
        END LOOP;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime')
       AND NOT EXISTS (SELECT 1 FROM pg_publication_tables
                       WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = 'messages') THEN
        ALTER PUBLICATION supabase_realtime ADD TABLE public.messages;
    END IF;
END $$;

SELECT public.projector_supabase_setup();
