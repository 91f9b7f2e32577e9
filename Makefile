# The two commands of the README. Each installs what it needs (Debian packages, virtualenv).
.PHONY: run test fuzz bench lint

run:  ## Run the service on the embedded SpatiaLite database, with demo data
	./scripts/run.sh

test:  ## Lint, then the suite on SQLite + SpatiaLite, on PostgreSQL + PostGIS, and with SPEEDUPS=off
	./scripts/test.sh

fuzz:  ## The long schemathesis run against the contract, every role (docs/api.md); FUZZ_EXAMPLES=200
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} SPEEDUPS=on .venv/bin/pytest -q -p no:cacheprovider -rP tests/app/test_contract_fuzz.py

bench:  ## The figures of docs/performance.md (modules: the checkout is on the path)
	./scripts/bootstrap.sh wrk
	.venv/bin/python -m bench.bench_issuance
	.venv/bin/python -m bench.bench_labels
	.venv/bin/python -m bench.bench_history
	.venv/bin/python -m bench.bench_consumer
	.venv/bin/python -m bench.bench_checks
	.venv/bin/python -m bench.bench_ingest
	ANOMALY_RULES=off .venv/bin/python -m bench.bench_ingest
	.venv/bin/python -m bench.bench_scenarios --pg postgresql://postgres@127.0.0.1:5432

lint:
	.venv/bin/ruff check .
