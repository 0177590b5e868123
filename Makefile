# GridLake. `make run` sets up and runs the whole platform; `make test` runs the tests.
SHELL := /bin/bash
GL := .venv/bin/gridlake
PYTEST := .venv/bin/pytest

.PHONY: bootstrap setup up down status run stop test test-unit lint bench clean

bootstrap:
	@bash infra/bootstrap.sh

setup: bootstrap
	$(GL) setup

up: setup
	$(GL) up

down:
	$(GL) down

status:
	$(GL) status

## The main job: local stack + simulator + streaming job + API, printing where to look.
run: setup
	$(GL) run

stop:
	$(GL) stop

## Every test (unit + integration on the real local stack, started once per session).
test: setup
	$(PYTEST) -q --durations=40 tests

test-unit: bootstrap
	$(PYTEST) -q -m "not integration" tests

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy infra jobs lakehouse api mock_devices ml ops

bench: setup
	$(GL) bench

clean:
	$(GL) down || true
	rm -rf .gridlake
