"""loc3r: language-based localization and 3D reasoning for video vision-language models."""

__version__ = "0.1.0"
