-- poststack core schema: container instances (podman or docker) backing the services.
CREATE TABLE poststack.containers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service_id bigint REFERENCES poststack.services (id) ON DELETE SET NULL,
    name text NOT NULL UNIQUE,
    runtime text NOT NULL CHECK (runtime IN ('podman', 'docker')),
    image text NOT NULL,
    container_id text,
    host text NOT NULL DEFAULT 'localhost',
    ports jsonb NOT NULL DEFAULT '[]'::jsonb,
    status text NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'running', 'exited', 'removed', 'unknown')),
    health text,
    started_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX containers_service_id_idx ON poststack.containers (service_id);

COMMENT ON TABLE poststack.containers IS 'container instances and their last known state';
