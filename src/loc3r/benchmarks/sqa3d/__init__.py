"""SQA3D: situated question answering and situation localization in ScanNet scenes."""
