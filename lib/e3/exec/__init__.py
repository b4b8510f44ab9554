"""Execution: planning a dataflow, scheduling it, executors, workers and running one task."""
