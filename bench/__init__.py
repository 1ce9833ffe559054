"""Benchmarks of the webhooks service: `python -m bench` (or `make bench`) writes
docs/benchmarks.md and docs/benchmarks.png; `python -m bench --smoke` checks every scenario
with tiny counts and writes to a temporary file instead."""
