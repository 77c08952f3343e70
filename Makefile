# poststack.core — every command sets itself up first (scripts/bootstrap.sh is a no-op when all is in place).
#
#   make run           images -> PostgreSQL -> migrations -> project containers on localhost (inventories/local)
#   make test          yamllint, ansible-lint, ansible-test sanity, unit, integration, molecule, HA, newcomer
#   make bench         the benchmarks in benchmarks/ (not part of make test)
#   make docs          docs/reference/: the module, plugin and role reference (antsibull-docs)
#
# Single layers: make lint | sanity | units | integration | ha | newcomer | molecule [SCENARIO=name]
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
ENV := . scripts/env.sh &&
INVENTORY ?= inventories/local
PLAYBOOK ?= playbooks/site.yml
PYTEST_ARGS ?=
SCENARIO ?=

.PHONY: run test bootstrap docs lint sanity units integration ha newcomer molecule bench changelog clean help

help:
	@sed -n '2,9p' Makefile

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	@$(ENV) ANSIBLE_CALLBACKS_ENABLED=ansible.builtin.profile_tasks ansible-playbook -i $(INVENTORY) $(PLAYBOOK)

test:
	@bash scripts/bootstrap.sh --for-tests
	@$(ENV) scripts/test.sh all

docs: bootstrap
	@$(ENV) scripts/reference.sh

lint: bootstrap
	@$(ENV) scripts/test.sh lint

sanity: bootstrap
	@$(ENV) scripts/test.sh sanity

units: bootstrap
	@$(ENV) scripts/test.sh units

integration:
	@bash scripts/bootstrap.sh --for-tests
	@$(ENV) scripts/test.sh integration

ha: bootstrap
	@$(ENV) scripts/test.sh ha

newcomer: bootstrap
	@$(ENV) scripts/test.sh newcomer

molecule: bootstrap
	@$(ENV) scripts/test.sh molecule $(SCENARIO)

bench: bootstrap
	@$(ENV) scripts/bench.sh

changelog: bootstrap
	@$(ENV) antsibull-changelog release

clean:
	rm -rf .cache .collections tests/output logs examples/project/logs
	rm -f .venv
