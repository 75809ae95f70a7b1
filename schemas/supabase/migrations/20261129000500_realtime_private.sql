-- Supabase Realtime: the projector broadcasts on the private topic `messages`; only known readers
-- (public.aaltohub_is_reader()) may receive it. Clients join with
--   supabase.channel('messages', { config: { private: true } })
-- after signing in (see SECURITY.md). Skipped where there is no Realtime.
DO $$
BEGIN
    IF to_regclass('realtime.messages') IS NOT NULL THEN
        DROP POLICY IF EXISTS aaltohub_readers_receive ON realtime.messages;
        CREATE POLICY aaltohub_readers_receive ON realtime.messages FOR SELECT TO authenticated
            USING (realtime.topic() = 'messages' AND public.aaltohub_is_reader());
    END IF;
END $$;
