"""e3: a durable, memoizing execution engine for East programs.

The library never prints and never exits; commands in e3.cli do that.
"""
__version__ = "0.1.0"
