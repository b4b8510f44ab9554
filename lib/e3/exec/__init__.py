"""Execution: identity, dataflow planning, queue, workers, runners and logs."""
