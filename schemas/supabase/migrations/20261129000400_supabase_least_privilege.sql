-- Supabase: every table we keep in public has RLS on and nothing granted to anon or authenticated
-- but SELECT on the readable projections, for known readers only (a `users` row with role user or
-- admin). Supabase's default privileges grant ALL on new public tables to anon and authenticated,
-- and TRUNCATE ignores RLS, so the grants are revoked explicitly, table by table. The same function
-- runs after every rebuild swap (projector/postgres/schema.py calls projector_supabase_setup), so a
-- swapped-in table ends with the same grants and policies. service_role (the backend key) keeps ALL.

-- Whether the caller (auth.uid(), Supabase) is a known reader. SECURITY DEFINER: the policy runs as
-- the querying role, which has no access to `users`.
CREATE OR REPLACE FUNCTION public.aaltohub_is_reader() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM public.users WHERE id = auth.uid() AND role IN ('user', 'admin'));
END $$;
REVOKE ALL ON FUNCTION public.aaltohub_is_reader() FROM PUBLIC;

CREATE OR REPLACE FUNCTION public.projector_supabase_setup() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
    readable CONSTANT text[] := ARRAY['telegram_groups', 'messages', 'message_versions', 'crawler_status'];
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon')
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('REVOKE ALL ON public.%I FROM PUBLIC, anon, authenticated', t);
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
                EXECUTE format('GRANT ALL ON public.%I TO service_role', t);
            END IF;
        END LOOP;
        FOREACH t IN ARRAY readable LOOP
            CONTINUE WHEN to_regclass('public.' || t) IS NULL;
            EXECUTE format('GRANT SELECT ON public.%I TO authenticated', t);
            EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_read', t);
            EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO authenticated'
                           ' USING (public.aaltohub_is_reader())', t || '_read', t);
        END LOOP;
        REVOKE ALL ON FUNCTION public.projector_supabase_setup() FROM PUBLIC, anon, authenticated;
        REVOKE ALL ON FUNCTION public.aaltohub_is_reader() FROM PUBLIC, anon;
        GRANT EXECUTE ON FUNCTION public.aaltohub_is_reader() TO authenticated;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime')
       AND NOT EXISTS (SELECT 1 FROM pg_publication_tables
                       WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = 'messages') THEN
        ALTER PUBLICATION supabase_realtime ADD TABLE public.messages;
    END IF;
END $$;
REVOKE ALL ON FUNCTION public.projector_supabase_setup() FROM PUBLIC;

SELECT public.projector_supabase_setup();
