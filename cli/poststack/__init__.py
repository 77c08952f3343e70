"""poststack: seed 003's command line over the poststack.core Ansible collection."""
