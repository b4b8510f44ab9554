"""A platform package for tests (`east-py run -p e3-test-platform`): functions that break their process."""
import os
import time

from east.runtime.platform import platform_function, platform_functions
from east.types.types import IntegerType


@platform_function(name="e3_test_exit", inputs=[IntegerType], output=IntegerType)
def e3_test_exit(code: int) -> int:
    os._exit(code)


@platform_function(name="e3_test_sleep", inputs=[IntegerType], output=IntegerType)
def e3_test_sleep(seconds: int) -> int:
    time.sleep(seconds)
    return seconds


@platform_function(name="e3_test_segfault", inputs=[IntegerType], output=IntegerType)
def e3_test_segfault(n: int) -> int:
    import signal

    # What a crash in native code looks like from outside (reading address 0 is not reliable here).
    os.kill(os.getpid(), signal.SIGSEGV)
    return n


platform = platform_functions(__name__)
