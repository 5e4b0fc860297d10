"""``python -m loc3r.integrations.lmms_eval`` prints the task folder to give lmms-eval as ``--include_path``."""

from loc3r.integrations.lmms_eval import TASKS_DIR

print(TASKS_DIR)
