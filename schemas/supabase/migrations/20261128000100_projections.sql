-- Projection tables built from the event log by the projector. Disposable: a replay rebuilds them.
-- Supabase CLI layout; the same file applies to the embedded Postgres (Supabase-only parts are guarded).

CREATE TABLE IF NOT EXISTS public.projection_checkpoints (
    name            text PRIMARY KEY,
    seq             bigint NOT NULL DEFAULT 0,          -- last applied stream seq
    events_applied  bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.telegram_groups (
    chat_id          bigint PRIMARY KEY,                -- marked peer id (channels -100…)
    kind             text NOT NULL DEFAULT 'supergroup', -- channel/supergroup/group/private/bot/saved
    title            text,
    username         text,
    member_count     integer,
    forum            boolean NOT NULL DEFAULT false,
    account          text,                              -- account that watches it
    is_active        boolean NOT NULL DEFAULT true,
    discovered_at    timestamptz,
    left_at          timestamptz,
    last_activity_at timestamptz,
    message_count    bigint NOT NULL DEFAULT 0,
    last_seq         bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.messages (
    chat_id             bigint NOT NULL,
    message_id          bigint NOT NULL,
    account             text NOT NULL,
    sender_id           bigint,
    sender_kind         text,
    sender_name         text,
    sender_username     text,
    date                timestamptz NOT NULL,
    edit_date           timestamptz,
    text                text NOT NULL DEFAULT '',
    entities            jsonb NOT NULL DEFAULT '[]',
    reply_to_message_id bigint,
    reply_top_id        bigint,
    forum_topic         boolean NOT NULL DEFAULT false,
    forward             jsonb,
    via_bot_id          bigint,
    post_author         text,
    views               integer,
    forwards            integer,
    replies             integer,
    grouped_id          bigint,
    media_type          text,
    media               jsonb,
    reactions           jsonb NOT NULL DEFAULT '[]',
    action_type         text,                           -- service messages: join, title change, pin…
    action              jsonb,
    is_service          boolean NOT NULL DEFAULT false,
    pinned              boolean NOT NULL DEFAULT false,
    is_deleted          boolean NOT NULL DEFAULT false,
    deleted_at          timestamptz,
    edit_count          integer NOT NULL DEFAULT 0,
    source              text NOT NULL,                  -- source of the first sighting
    first_seq           bigint NOT NULL,
    last_seq            bigint NOT NULL,
    observed_at         timestamptz NOT NULL,
    search              tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(text, ''))) STORED,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX IF NOT EXISTS messages_search_idx ON public.messages USING gin (search);
CREATE INDEX IF NOT EXISTS messages_account_msg_idx ON public.messages (account, message_id);
CREATE INDEX IF NOT EXISTS messages_chat_date_idx ON public.messages (chat_id, date DESC);

-- Every distinct version (text/media) of a message, for edit history.
CREATE TABLE IF NOT EXISTS public.message_versions (
    chat_id       bigint NOT NULL,
    message_id    bigint NOT NULL,
    content_hash  text NOT NULL,
    text          text NOT NULL DEFAULT '',
    media         jsonb,
    edit_date     timestamptz,                         -- NULL for the original
    seq           bigint NOT NULL,                     -- first seq that showed this version
    observed_at   timestamptz NOT NULL,
    PRIMARY KEY (chat_id, message_id, content_hash)
);

-- Deletes that arrived without a chat id and matched no known message yet (resolved later).
CREATE TABLE IF NOT EXISTS public.pending_deletes (
    account     text NOT NULL,
    message_id  bigint NOT NULL,
    deleted_at  timestamptz NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (account, message_id)
);

CREATE TABLE IF NOT EXISTS public.crawler_status (
    chat_id               bigint PRIMARY KEY,
    account               text,
    status                text NOT NULL DEFAULT 'initializing'
                          CHECK (status IN ('active', 'inactive', 'error', 'initializing')),
    backfill_fetched      integer NOT NULL DEFAULT 0,
    backfill_total        integer,
    backfill_completed_at timestamptz,
    last_message_at       timestamptz,
    last_gapfill_at       timestamptz,
    gapfill_new           integer NOT NULL DEFAULT 0,  -- messages gap-fill found that live missed (total)
    last_error            text,
    last_error_at         timestamptz,
    last_flood_wait_s     integer,
    last_flood_wait_at    timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Dead letters: events a projection could not decode or apply.
CREATE TABLE IF NOT EXISTS public.failed_messages (
    id           bigserial PRIMARY KEY,
    projection   text NOT NULL,
    seq          bigint NOT NULL,
    event_id     text,
    chat_id      bigint,
    subject      text,
    payload      bytea NOT NULL,
    error        text NOT NULL,
    retry_count  integer NOT NULL DEFAULT 0,
    resolved     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    UNIQUE (projection, seq)
);
CREATE INDEX IF NOT EXISTS failed_messages_unresolved_idx ON public.failed_messages (resolved, created_at DESC);

-- Supabase specifics, only where the roles / publication exist.
DO $$
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
        FOREACH t IN ARRAY ARRAY['failed_messages', 'projection_checkpoints', 'pending_deletes'] LOOP
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
