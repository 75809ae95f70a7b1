-- messages (account, message_id) served the deletes numbered per account before messages had
-- id_scope; those (live and rebuild) look rows up by (id_scope, message_id) now, and no reader
-- filters messages by account. Every insert kept it up, and every rebuild sorted all messages
-- for it (2.7-3.6 s of a 1M-event rebuild): decision 047.
DROP INDEX IF EXISTS public.messages_account_msg_idx;
