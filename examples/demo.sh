#!/usr/bin/env bash
# The demo `make demo` runs: a repository, a few values stored and read back.
set -euo pipefail
dir=${DEMO_DIR:-$(mktemp -d)}
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"

e3 repo create .
echo '[1, 2, 3]' > numbers.east
h=$(e3 hash-object -w -t 'Array<Integer>' numbers.east)
echo "stored Array<Integer> as $h"
e3 cat-object -t "$h"
e3 cat-object -p "$h"
e3 convert numbers.east --type 'Array<Integer>' --to json
e3 fsck
