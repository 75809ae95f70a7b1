-- Full-text search reads a GIN index over an expression instead of a stored tsvector column: a
-- rebuild and every write no longer compute and store the document (docs/decisions/043). PostgREST
-- callers search with `text=wfts(simple).<words>`, which the index serves.
DROP INDEX IF EXISTS public.messages_search_idx;
ALTER TABLE public.messages DROP COLUMN IF EXISTS search;
CREATE INDEX IF NOT EXISTS messages_search_idx ON public.messages
    USING gin (to_tsvector('simple'::regconfig, text));
