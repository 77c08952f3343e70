DROP TABLE poststack.containers;
