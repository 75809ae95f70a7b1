-- Supabase's `supabase_realtime` publication lists public.messages (postgres_changes). A rebuild
-- swap puts a new public.messages in place, and only the publication's owner may add it again:
-- the projector (aaltohub_projector, docs/decisions/038-projector-role.md) is not, so a rebuild
-- under compose failed with "must be owner of publication supabase_realtime". This function adds
-- it, as whoever ran the migrations (compose: the administrator, who may alter the publication;
-- `migrate --service-roles` leaves the function to it); the projector may only call it. The old
-- table leaves the publication with its retired schema.
CREATE OR REPLACE FUNCTION public.aaltohub_publish_messages() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime')
       AND to_regclass('public.messages') IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_publication_tables
                       WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = 'messages') THEN
        ALTER PUBLICATION supabase_realtime ADD TABLE public.messages;
    END IF;
END $$;
REVOKE ALL ON FUNCTION public.aaltohub_publish_messages() FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['aaltohub_owner', 'aaltohub_projector'] LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        EXECUTE format('GRANT EXECUTE ON FUNCTION public.aaltohub_publish_messages() TO %I', r);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon')
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        REVOKE ALL ON FUNCTION public.aaltohub_publish_messages() FROM anon, authenticated;
    END IF;
END $$;

-- projector_supabase_setup as in 20261129200000, publishing through the function above.
CREATE OR REPLACE FUNCTION public.projector_supabase_setup() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
    r text;
    readable CONSTANT text[] := ARRAY['telegram_groups', 'messages', 'message_versions', 'crawler_status'];
    owns_functions CONSTANT boolean := pg_has_role(
        (SELECT proowner FROM pg_proc WHERE oid = 'public.projector_supabase_setup()'::regprocedure), 'USAGE');
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon')
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        FOR t IN SELECT tablename FROM pg_tables
                 WHERE schemaname = 'public' AND pg_has_role(tableowner, 'USAGE') LOOP
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('REVOKE ALL ON public.%I FROM PUBLIC, anon, authenticated', t);
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
                EXECUTE format('GRANT ALL ON public.%I TO service_role', t);
            END IF;
            FOREACH r IN ARRAY ARRAY['aaltohub_ingest', 'aaltohub_api', 'aaltohub_projector'] LOOP
                CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
                EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', r || '_service', t);
                EXECUTE format('CREATE POLICY %I ON public.%I FOR ALL TO %I USING (true) WITH CHECK (true)',
                               r || '_service', t, r);
            END LOOP;
        END LOOP;
        FOREACH t IN ARRAY readable LOOP
            CONTINUE WHEN to_regclass('public.' || t) IS NULL;
            CONTINUE WHEN NOT pg_has_role((SELECT tableowner FROM pg_tables
                                           WHERE schemaname = 'public' AND tablename = t), 'USAGE');
            EXECUTE format('GRANT SELECT ON public.%I TO authenticated', t);
            EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_read', t);
            EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO authenticated'
                           ' USING (public.aaltohub_is_reader())', t || '_read', t);
        END LOOP;
        IF owns_functions THEN
            REVOKE ALL ON FUNCTION public.projector_supabase_setup() FROM PUBLIC, anon, authenticated;
            REVOKE ALL ON FUNCTION public.aaltohub_is_reader() FROM PUBLIC, anon;
            GRANT EXECUTE ON FUNCTION public.aaltohub_is_reader() TO authenticated;
        END IF;
    END IF;
    PERFORM public.aaltohub_publish_messages();
END $$;
REVOKE ALL ON FUNCTION public.projector_supabase_setup() FROM PUBLIC;

SELECT public.projector_supabase_setup();
