DROP TABLE poststack.services;
