# e3: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
PIP = $(PYTHON) -m pip
PIP_FLAGS = --quiet --disable-pip-version-check --root-user-action=ignore
DEMO_DIR ?= $(CURDIR)/build/demo

.PHONY: all install install-test demo test man bench clean

all: install

install:
	$(PIP) install $(PIP_FLAGS) .

install-test:
	$(PIP) install $(PIP_FLAGS) '.[test]'

demo: install build/my-package.zip
	DEMO_DIR=$(DEMO_DIR) bash examples/demo.sh

# The example package (README quick start, demo, tests): rebuilt when its source or the SDK changes.
build/my-package.zip: examples/my_package.py $(wildcard lib/e3/sdk/*.py) lib/e3/package_zip.py
	$(PYTHON) examples/my_package.py $@

test: install-test
	$(PYTHON) -m pytest -n 2 -q -p no:cacheprovider

man:
	$(PYTHON) man/build_man.py build/man

bench: install
	for b in bench/*.py; do $(PYTHON) $$b || exit 1; done

clean:
	rm -rf build dist lib/*.egg-info
