-- Projector additions to 20261128000100 (additive only: nothing there is renamed or dropped).
-- Statements between the markers are plain one-per-line-end DDL: the projector replays them into a
-- fresh schema for a rebuild (projector/pg_schema.py), so keep them simple.

-- projector:ddl:begin
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS deleted_seq bigint;
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS reactions_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS media_sha256 text;
ALTER TABLE public.messages ADD COLUMN IF NOT EXISTS media_path text;
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS meta_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE public.crawler_status ADD COLUMN IF NOT EXISTS status_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE public.crawler_status ADD COLUMN IF NOT EXISTS gapfill_seq bigint NOT NULL DEFAULT 0;
-- Deletes with a chat id that arrived before the message (applied when the post arrives).
CREATE TABLE IF NOT EXISTS public.pending_chat_deletes (
    chat_id     bigint NOT NULL,
    message_id  bigint NOT NULL,
    deleted_at  timestamptz NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX IF NOT EXISTS messages_reply_idx ON public.messages (chat_id, reply_to_message_id) WHERE reply_to_message_id IS NOT NULL;
-- projector:ddl:end

-- Supabase grants / RLS / realtime publication for the projection tables; called again after a
-- rebuild swaps fresh tables into public (RLS, policies and publication membership belong to a table).
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
        FOREACH t IN ARRAY ARRAY['pending_deletes', 'pending_chat_deletes'] LOOP
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

INSERT INTO public.projection_checkpoints (name) VALUES ('postgres'), ('duckdb'), ('broadcast')
ON CONFLICT (name) DO NOTHING;
