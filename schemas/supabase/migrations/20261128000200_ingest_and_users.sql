-- Tables owned by ingest (sessions, entity cache) and by the app (users and roles).

-- One encrypted Telethon StringSession per account (AES-256-GCM; key id inside the ciphertext).
CREATE TABLE IF NOT EXISTS public.telegram_sessions (
    account      text PRIMARY KEY,
    ciphertext   bytea NOT NULL,
    phone_hint   text,                                  -- last digits only, for the admin UI
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Resolved peers, so the crawler does not call get_entity repeatedly (flood-wait risk).
CREATE TABLE IF NOT EXISTS public.entity_cache (
    account      text NOT NULL,
    peer_id      bigint NOT NULL,                       -- marked id
    access_hash  bigint,
    kind         text NOT NULL,                         -- user/chat/channel
    username     text,
    title        text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, peer_id)
);
CREATE INDEX IF NOT EXISTS entity_cache_username_idx ON public.entity_cache (account, lower(username));

-- App users and roles (id = Supabase auth user id / JWT "sub").
CREATE TABLE IF NOT EXISTS public.users (
    id          uuid PRIMARY KEY,
    email       text,
    role        text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE t text;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon')
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        FOREACH t IN ARRAY ARRAY['telegram_sessions', 'entity_cache', 'users'] LOOP
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
            EXECUTE format('REVOKE ALL ON public.%I FROM anon, authenticated', t);
        END LOOP;
    END IF;
END $$;
