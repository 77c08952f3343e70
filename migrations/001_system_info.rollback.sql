DROP TABLE poststack.system_info;
