-- Telegram's update state per account, beside its session, so that a restart after downtime of
-- any length can ask Telegram for the difference. entity_id 0 holds the account-wide state
-- (pts, qts, date, seq); a channel's marked id holds that channel's pts. Written by ingest only
-- after the events the state covers are durable (acked by the log or in the spool).
CREATE TABLE IF NOT EXISTS public.telegram_update_state (
    account     text NOT NULL,
    entity_id   bigint NOT NULL,
    pts         bigint NOT NULL,
    qts         bigint NOT NULL DEFAULT 0,
    date        timestamptz,
    seq         bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, entity_id)
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon')
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        ALTER TABLE public.telegram_update_state ENABLE ROW LEVEL SECURITY;
        REVOKE ALL ON public.telegram_update_state FROM anon, authenticated;
    END IF;
END $$;
