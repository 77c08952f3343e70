SELECT 1 / count(*) FROM public.notes;
