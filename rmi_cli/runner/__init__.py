"""Orchestration without a CLI: queue experiments, run jobs, look runs up, estimate costs."""
