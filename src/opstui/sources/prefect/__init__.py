"""Prefect 3 as a source of runs: flow runs as runs, task runs as stages."""
