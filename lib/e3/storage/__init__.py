"""Storage: what lies in `.e3/` and how it is written safely.

Objects by hash, refs and git objects, execution records and the memo key,
the queue's files, locks, log files, and the file helpers they share. Nothing
here knows what a workspace, a package or a dataflow is.
"""
