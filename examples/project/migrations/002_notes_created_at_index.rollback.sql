-- poststack:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS public.notes_created_at_idx;
