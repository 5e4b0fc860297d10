"""MSQA (multi-modal situated QA), ScanNet part: situated open questions with a location and orientation."""
