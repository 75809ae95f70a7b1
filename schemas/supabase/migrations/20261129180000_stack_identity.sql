-- Which stack this database belongs to (docs/decisions/029-stack-identity.md): the stack id of the
-- log it projects and the Postgres system identifier it was recorded on, written at migrate time.
-- Every service compares them with what it expects before it touches a table.
CREATE TABLE IF NOT EXISTS public.stack_identity (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    stack_id text NOT NULL,
    system_identifier text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The recorded identity next to the live server's system identifier. SECURITY DEFINER: the
-- service roles read it without a grant on the table or on pg_control_system().
CREATE OR REPLACE FUNCTION public.aaltohub_stack_identity()
RETURNS TABLE (stack_id text, recorded_system_identifier text, system_identifier text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.stack_id, s.system_identifier, c.system_identifier::text
    FROM pg_catalog.pg_control_system() c
    LEFT JOIN public.stack_identity s ON true
$$;
REVOKE ALL ON FUNCTION public.aaltohub_stack_identity() FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon')
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        REVOKE ALL ON FUNCTION public.aaltohub_stack_identity() FROM anon, authenticated;
    END IF;
END $$;
