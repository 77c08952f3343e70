-- poststack:no-transaction
-- Built without blocking writes; re-runnable thanks to IF NOT EXISTS.
CREATE INDEX CONCURRENTLY IF NOT EXISTS notes_created_at_idx ON public.notes (created_at DESC);
