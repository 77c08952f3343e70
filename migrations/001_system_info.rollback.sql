DROP TABLE poststack.system_info;

-- The schema stays while anything else lives in it (the migration history usually does).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = 'poststack'::regnamespace)
       AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = 'poststack'::regnamespace)
       AND NOT EXISTS (SELECT 1 FROM pg_type WHERE typnamespace = 'poststack'::regnamespace) THEN
        DROP SCHEMA poststack;
    END IF;
END
$$;
