"""pgtwin: a Python OCF resource agent for two-node PostgreSQL clusters under Pacemaker.

Standard library only, so that it runs with the system Python of any cluster node. Modules:

* ``ocf``      exit codes and logging
* ``params``   the parameter table (single source for meta-data and validation)
* ``metadata`` the OCF meta-data XML
* ``runner``   the seam to PostgreSQL: host mode, or containers (podman or docker)
* ``postgres`` PostgreSQL operations (pg_ctl, psql, pg_basebackup, pg_rewind, pg_controldata)
* ``cluster``  Pacemaker CLI (promotion scores, node attributes, membership)
* ``rules``    pure decision logic: what to do given what was observed
* ``actions``  the OCF actions wiring observations, rules and operations together
"""

VERSION = "0.1.0"
