"""dlm: can small causal LMs trained on domain data reach large models' zero/few-shot scores?

Sub-packages, top to bottom (an import never points up; tests/test_structure.py checks it):
`cli` → `plan`, `study` → `results` → `harness_tasks`, `trainers` → `data`, `store` → `config`, `errors`.
"""
