# ettin — every target is idempotent and is what CI, users and the Dockerfile run.
#   make demo   install what is missing, then embed, retrieve and rerank in a private cluster
#   make test   install what is missing, then every test suite
# PG defaults to the system's own Postgres package (Debian 12: 15; Debian 13: 17). Others: 16
# (PyPI's pgserver build), 17 or 18 (built from Debian's sources; scripts/pg-major.sh puts each in
# /var/cache/ettin/pg/PG): `make deps install PG=18`. A server installed any other way:
# PG_CONFIG=/path/to/pg_config make install.
SYSTEM_PG := $(shell bash -c '. scripts/lib.sh && echo $$SYSTEM_PG')
SYSTEM_PG_CONFIG := /usr/lib/postgresql/$(SYSTEM_PG)/bin/pg_config
PG ?= $(SYSTEM_PG)
ifeq ($(PG),$(SYSTEM_PG))
PG_CONFIG ?= $(SYSTEM_PG_CONFIG)
else
PG_CONFIG ?= /var/cache/ettin/pg/$(PG)/bin/pg_config
endif
# The other majors `make test` runs the SQL suite on, and upgrades to with pg_upgrade: built on
# this host (TEST_MAJORS), or, where only a newer Debian packages them, in a container of that
# release (CONTAINER_MAJORS: 17 is Debian 13's own; tests/pg-container.sh).
TEST_MAJORS ?= 16 18
CONTAINER_MAJORS ?= 17
CARGO_TARGET_DIR ?= /var/tmp/ettin-target
ORT_DIR ?= /var/cache/ettin/onnxruntime
ETTIN_ORT_LIB ?= $(ORT_DIR)/libonnxruntime.so.1.31.1
export PG_CONFIG CARGO_TARGET_DIR ORT_DIR ETTIN_ORT_LIB Q TEST_MAJORS CONTAINER_MAJORS
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: deps install pg-config test test-engine test-sql test-tools demo fixtures

# The system's own Postgres (Debian 12: 15) and the toolchain always; another major when PG/PG_CONFIG names one.
deps:
	PG_CONFIG=$(SYSTEM_PG_CONFIG) bash scripts/deps.sh
	if [ "$(PG_CONFIG)" != $(SYSTEM_PG_CONFIG) ]; then bash scripts/pg-major.sh $(PG); fi

install: deps
	bash scripts/install.sh

# The pg_config `make install PG=...` uses (the Dockerfile copies from its directories).
pg-config:
	@echo $(PG_CONFIG)

# Every suite, even after one fails; ends with "ettin: N passed, M failed". On 15 everything; on
# each of TEST_MAJORS and CONTAINER_MAJORS the SQL suite with its client, load, standby, sync and
# shared-worker checks, and a pg_upgrade from 15; the Docker image with its defaults.
test: install
	bash scripts/test-deps.sh
	for m in $(TEST_MAJORS); do $(MAKE) --no-print-directory install PG=$$m PG_CONFIG=/var/cache/ettin/pg/$$m/bin/pg_config || exit 1; done
	bash tests/run_all.sh

# Engine tests: no Postgres; parity with sentence-transformers on the committed fixtures.
test-engine:
	cargo fmt --all --check
	cargo test -p ettin-engine

# SQL tests: the installed extension in a private cluster run as the postgres user, then
# psycopg 3 and SQLAlchemy clients against it.
test-sql:
	bash scripts/test-deps.sh
	bash tests/run_sql_tests.sh

demo: install
	@# make demo Q="your question": that question only.
	bash scripts/demo.sh

# The export tool on both fixture layouts (needs torch: pip install -r tools/requirements.txt;
# not part of `make test`, which needs no torch).
PYTHON ?= python3
test-tools:
	PYTHON=$(PYTHON) bash tests/tools/test_export.sh

# Regenerate the test models and reference scores (needs torch, transformers 5 and
# sentence-transformers 6: pip install -r tools/requirements.txt).
fixtures:
	$(PYTHON) tools/make_fixtures.py --out tests/fixtures/models
