"""The record side: run records (store.py), published baselines (baselines.yaml), reports (report.py)."""
