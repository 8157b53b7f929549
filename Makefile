# The two commands of the README:
#   make demo   runs the whole stack on embedded services (no Docker)
#   make test   installs everything and runs the test suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-unit test-integration lint bench install kafka clean

# Apache Kafka for the tests and benchmarks: the broker's runtime classpath, copied from
# Maven Central by deploy/kafka/pom.xml (the one place its version is pinned).
KAFKA_VERSION := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' deploy/kafka/pom.xml)
KAFKA_DIR     := .cache/kafka-$(KAFKA_VERSION)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@# Debian's redis-server (7.0+) and redis-cli (redis-tools): the Redis Cluster tests
	@# run real cluster nodes and join them with redis-cli; openssl makes the TLS test's certificates.
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v openssl >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq redis-server redis-tools openssl; }
	@# The dashboard tests drive a real headless Chromium (Debian's package).
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	touch $@

$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

$(KAFKA_DIR)/.complete: deploy/kafka/pom.xml
	@command -v mvn >/dev/null || { echo "make: Maven (mvn) and Java 17+ are needed to fetch Apache Kafka" >&2; exit 1; }
	rm -rf $(KAFKA_DIR)
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory=$(abspath $(KAFKA_DIR))
	touch $@

kafka: $(KAFKA_DIR)/.complete

install: $(VENV)/.installed

demo: install
	$(BIN)/hubcounter demo

lint: install
	$(BIN)/ruff check stream tests bench

test: install kafka lint
	$(BIN)/pytest -q
	@# The demo runs on Tansu: the smoke tests prove the worker there too.
	HUBCOUNTER_TEST_BROKER=tansu $(BIN)/pytest -q -m smoke

test-unit: install
	$(BIN)/pytest -q -m unit

test-integration: install kafka
	$(BIN)/pytest -q -m integration

bench: $(VENV)/.bench-installed kafka
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .cache
