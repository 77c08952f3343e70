CREATE TABLE greetings (
    id serial PRIMARY KEY,
    message text NOT NULL
);
INSERT INTO greetings (message) VALUES ('Hello from PostgreSQL, migrated by poststack');
