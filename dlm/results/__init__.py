"""The report side: published baselines (baselines.yaml), matching, verdicts, tables and plots (report.py)."""
