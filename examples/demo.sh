#!/usr/bin/env bash
# What `make demo` runs: the README's quick start on the example package, then a
# change of one input to show that only the tasks downstream of it run again.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
zip=${DEMO_ZIP:-$here/build/my-package.zip}
dir=${DEMO_DIR:-$(mktemp -d)}
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
cp "$zip" ./my-package.zip
step() { printf '\n$ %s\n' "$*"; "$@"; }

step e3 repo create .
step e3 package import . ./my-package.zip
step e3 workspace create . dev
step e3 workspace deploy . dev my-package@1.0.0
step e3 start . dev
step e3 logs . dev.my-task --follow
step e3 get . dev.tasks.my-task.output

echo 3 > times.east
step e3 set . dev.inputs.times times.east
step e3 start . dev
step e3 get . dev.tasks.shout.output
step e3 workspace log . dev
step e3 list . dev -r
step e3 fsck
