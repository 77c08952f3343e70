-- poststack core schema: the services poststack manages (postgres, pgbouncer, project containers...).
CREATE TABLE poststack.services (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_.-]*$'),
    kind text NOT NULL CHECK (kind IN ('postgres', 'pgbouncer', 'backup', 'project', 'other')),
    status text NOT NULL DEFAULT 'defined' CHECK (status IN ('defined', 'running', 'stopped', 'failed')),
    config jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE poststack.services IS 'services managed by poststack and their last known status';
