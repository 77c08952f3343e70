-- poststack core schema: key/value metadata about this installation (schema version notes, host, settings).
CREATE SCHEMA IF NOT EXISTS poststack;

CREATE TABLE poststack.system_info (
    key text PRIMARY KEY CHECK (key <> ''),
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE poststack.system_info IS 'poststack installation metadata (key/value)';

INSERT INTO poststack.system_info (key, value) VALUES ('core_schema_created_at', now()::text);
