# e3: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
PIP = $(PYTHON) -m pip
PIP_FLAGS = --quiet --disable-pip-version-check --root-user-action=ignore
DEMO_DIR ?= $(CURDIR)/build/demo

.PHONY: all install install-test install-bench demo test man bench bench-dag soak clean

all: install

install:
	$(PIP) install $(PIP_FLAGS) .

install-test:
	$(PIP) install $(PIP_FLAGS) '.[test,server,dask]'

# bench/remote.py loads the server with wrk (a Python client on the same two cores measures itself).
install-bench:
	$(PIP) install $(PIP_FLAGS) '.[server,dask]'
	@command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null || \
	  echo "make bench: could not install wrk (Debian: apt-get install wrk); bench/remote.py falls back to a Python client" >&2

demo: install build/my-package.zip
	DEMO_DIR=$(DEMO_DIR) bash examples/demo.sh

# The example package (README quick start, demo, tests): rebuilt when its source or the SDK changes.
build/my-package.zip: examples/my_package.py $(wildcard lib/e3/sdk/*.py) lib/e3/repo/package_zip.py
	$(PYTHON) examples/my_package.py $@

# tests/test_man.py renders every page with the system's man and groff.
test: install-test
	@command -v man >/dev/null && command -v groff >/dev/null || \
	  { echo "make test: the tests need man and groff (Debian: apt-get install man-db groff-base)" >&2; exit 1; }
	$(PYTHON) -m pytest -n 2 -q -p no:cacheprovider

man:
	$(PYTHON) man/build_man.py build/man

# Benchmarks print ratios against baselines measured in the same run (never part of `make test`),
# and mark each goal ok or MISSED. `make bench BENCH_FLAGS=--check` fails when a goal is missed.
# bigdata moves a 1 GB value; remote and cluster start a real server and a real Dask cluster.
BENCHES = objects refs package_bench workspace runners queue_bench verify git_pack east_lock bigdata remote cluster
BENCH_FLAGS ?=
bench: install-bench
	for b in $(BENCHES); do $(PYTHON) bench/$$b.py $(BENCH_FLAGS) || exit 1; done

# e3 against Snakemake and DVC, installed in their own venv (build/bench-venv), never e3 dependencies.
# Each first run is timed three times, on copies of the built pipeline, and the best is reported.
bench-dag: install
	bash bench/setup_peers.sh && $(PYTHON) bench/dag.py --e3-10k --first 3 $(BENCH_FLAGS)

# 200 kill -9 trials of workers: trials, executions lost, objects corrupt, executions completed twice;
# 200 of e3 start killed with its workers (the queue drained by the next run); 200 of a byte flipped in an object.
soak: install
	$(PYTHON) bench/soak.py --trials 200
	$(PYTHON) bench/soak.py --mode drain --trials 200
	$(PYTHON) bench/soak.py --mode flip --trials 200

clean:
	rm -rf build dist lib/*.egg-info
