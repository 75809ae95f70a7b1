-- The supergroup a basic group became is the newest by (time, seq) of the facts that name one
-- (projector/rules.py, rule "migration link"): a chat discovery or update naming it, or a
-- migration service message (MessageActionChatMigrateTo in the basic group,
-- MessageActionChannelMigrateFrom in the supergroup), which live ingest and backfill record.
-- A fact that names no link no longer clears it.
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS migrated_at timestamptz;
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS migrated_seq bigint NOT NULL DEFAULT 0;
UPDATE public.telegram_groups SET migrated_at = meta_at, migrated_seq = meta_seq
WHERE migrated_to_chat_id IS NOT NULL AND migrated_seq = 0;
