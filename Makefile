# ettin — every target is idempotent and is what CI, users and the Dockerfile run.
#   make demo   install what is missing, then retrieve-then-rerank in a private cluster
#   make test   install what is missing, then every test suite
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
CARGO_TARGET_DIR ?= /var/tmp/ettin-target
ORT_DIR ?= /var/cache/ettin/onnxruntime
ETTIN_ORT_LIB ?= $(ORT_DIR)/libonnxruntime.so.1.31.1
export PG_CONFIG CARGO_TARGET_DIR ORT_DIR ETTIN_ORT_LIB Q
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: deps install test test-engine test-sql test-tools demo fixtures

deps:
	bash scripts/deps.sh

install: deps
	bash scripts/install.sh

# Every suite, even after one fails; ends with "ettin: N passed, M failed".
test: install
	bash scripts/test-deps.sh
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
