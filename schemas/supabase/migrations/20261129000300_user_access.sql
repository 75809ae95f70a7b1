-- Readers must be known users: a `users` row with role `none` has no access. The API records a
-- Supabase Auth user at first sight with the configured newcomer role (default `none`), so an
-- admin sees who asked and grants `user` or `admin`.
ALTER TABLE public.users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE public.users
    ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'user', 'none'));
