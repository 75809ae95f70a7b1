-- Row-level security must not stop our own services. Under Supabase every table has RLS, and the
-- service roles (aaltohub_ingest, aaltohub_api; compose creates them with `migrate
-- --service-roles`) are neither owners nor BYPASSRLS, so without a policy ingest could not
-- write its sessions and the API would read no rows. Each service role gets a policy that admits
-- it on every table; what it may do there is still decided by its grants
-- (aaltohub/embedded/pg_roles.py: grant_service_roles). Same after every rebuild swap.
CREATE OR REPLACE FUNCTION public.projector_supabase_setup() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
    r text;
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
            FOREACH r IN ARRAY ARRAY['aaltohub_ingest', 'aaltohub_api'] LOOP
                CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
                EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', r || '_service', t);
                EXECUTE format('CREATE POLICY %I ON public.%I FOR ALL TO %I USING (true) WITH CHECK (true)',
                               r || '_service', t, r);
            END LOOP;
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
