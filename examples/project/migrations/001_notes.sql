-- Example project: the notes the demo web app lists.
CREATE TABLE public.notes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title text NOT NULL CHECK (title <> ''),
    body text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO public.notes (title, body) VALUES
    ('Hello from poststack', 'This row was written by migration 001_notes.sql.'),
    ('Rollbacks work', 'Run playbooks/rollback.yml with target_version=0 and this table is gone.');
