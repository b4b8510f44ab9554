"""Helpers that tests/ and bench/ share: running this checkout's executables (commands), building
test packages and tasks (packages, pkgfixture, runner_tasks), the crash trials (crash_*), a real
e3-api-server (api_server), a real Dask cluster (dask_cluster), and what the Beast2 streaming tests
hold e3.beast2_stream to (beast2_values). None of them imports pytest:
benchmarks run without it.

pytest finds the package through `pythonpath` in pyproject.toml; a benchmark puts tests/ on
sys.path itself. Fixtures stay in tests/conftest.py.
"""
