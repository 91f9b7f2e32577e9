# The two commands of the README. Each installs what it needs (Debian packages, virtualenv).
.PHONY: run test bench lint

run:  ## Run the service on the embedded SpatiaLite database, with demo data
	./scripts/run.sh

test:  ## Lint, then the suite on SQLite + SpatiaLite, on PostgreSQL + PostGIS, and with SPEEDUPS=off
	./scripts/test.sh

bench:  ## The performance figures of the README
	./scripts/bootstrap.sh wrk
	.venv/bin/python bench/bench_issuance.py
	.venv/bin/python bench/bench_labels.py
	.venv/bin/python bench/bench_history.py
	.venv/bin/python bench/bench_consumer.py
	.venv/bin/python bench/bench_checks.py
	.venv/bin/python bench/bench_ingest.py
	ANOMALY_RULES=off .venv/bin/python bench/bench_ingest.py
	.venv/bin/python bench/bench_scenarios.py --pg postgresql://postgres@127.0.0.1:5432

lint:
	.venv/bin/ruff check .
