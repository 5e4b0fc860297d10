"""lmms-eval task YAMLs of the loc3r benchmarks (``--include_path`` this folder) and their ``utils.py``."""
