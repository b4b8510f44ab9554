#!/usr/bin/env python3
"""The example package `my-package` 1.0.0, used by the README's quick start, `make demo` and the tests.

    python3 examples/my_package.py build/my-package.zip

Datasets it declares:

    inputs.greeting   String   "Hello"
    inputs.name       String   "World"
    inputs.times      Integer  2
    tasks.greet       East:   greeting, name      -> "Hello, World!"
    tasks.my-task     East:   greet.output, times -> "Hello, World! Hello, World!" (and a log line)
    tasks.shout       bash:   my-task.output      -> "HELLO, WORLD! HELLO, WORLD!"

`shout` is a custom task: a bash script that reads its input file and writes
`output.beast2`, here with `e3 convert` (East text in, upper-cased, back to Beast2).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from e3 import sdk  # noqa: E402
from e3.east import East, IntegerType, NullType, StringType  # noqa: E402

greeting = sdk.input("greeting", StringType, "Hello")
name = sdk.input("name", StringType, "World")
times = sdk.input("times", IntegerType, 2)

greet = sdk.task(
    "greet",
    [greeting, name],
    East.function([StringType, StringType], StringType, lambda b, g, n: East.str(g, ", ", n, "!")),
)

# A platform function of east-py-std: what it prints goes to the task's log (`e3 logs . dev.my-task`).
console_log = East.platform("console_log", [StringType], NullType)


def repeat(b, text, n):
    b.let(console_log(East.str("my-task: repeating ", text, " ", East.print(n), " times")))
    return text.concat(" ").repeat(n).trim_end()


my_task = sdk.task("my-task", [greet.output, times], East.function([StringType, IntegerType], StringType, repeat))


def shout_script(b, inputs, output):
    # LC_ALL=C: tr touches ASCII letters only, so the .east text stays well formed.
    return East.str(
        "set -euo pipefail\n",
        "e3 convert ", sdk.quote(inputs.get(0)), " --to east",
        " | LC_ALL=C tr a-z A-Z",
        " | e3 convert --from east --type String --to beast2 -o ", sdk.quote(output), "\n",
    )


shout = sdk.custom_task("shout", [my_task.output], StringType, shout_script)

package = sdk.package("my-package", "1.0.0", shout)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: my_package.py OUT.zip\n")
        return 2
    out = argv[0]
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    built = sdk.export(package, out)
    print(f"{out}: {built.name}@{built.version} {built.package_hash} ({len(built.objects)} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
