-- The supergroup a basic group became: its history continues there
-- (docs/decisions/031-pre-migration-history.md). Set from a chat update that names it (an export
-- imported with --migrated-from); NULL otherwise.
ALTER TABLE public.telegram_groups ADD COLUMN IF NOT EXISTS migrated_to_chat_id bigint;
