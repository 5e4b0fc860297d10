"""VSI-Bench (thinking-in-space: visual-spatial questions on room videos) and VSI-Bench-debiased."""
