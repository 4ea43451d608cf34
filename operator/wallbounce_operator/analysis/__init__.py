"""Canary analysis: PromQL (queries.py, prometheus.py), statistics (stats.py) and verdicts (verdict.py)."""
