"""lm-evaluation-harness task plugins (YAML families), their data loader and metrics, and the `dlm eval` wrapper.

`lm_eval --tasks fin_sentiment --include_path dlm/harness_tasks` works on this folder directly; `dlm tasks path`
prints it. Nothing heavy is imported here.
"""
