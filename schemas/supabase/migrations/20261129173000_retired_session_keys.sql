-- MASTER_KEY key ids that a rotation retired: once every session is re-encrypted under the new
-- key, a ciphertext under a retired key is refused even while MASTER_KEY still lists that key
-- (a restored backup row, a copied old ciphertext). Written by `aaltohub login --rotate`.
CREATE TABLE IF NOT EXISTS public.telegram_session_keys_retired (
    key_id      text PRIMARY KEY,
    retired_at  timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon')
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        ALTER TABLE public.telegram_session_keys_retired ENABLE ROW LEVEL SECURITY;
        REVOKE ALL ON public.telegram_session_keys_retired FROM anon, authenticated;
    END IF;
END $$;
