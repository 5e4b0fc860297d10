"""Applications on a trained model: demo, infer, stream (+ streamed benchmarks), the web demo, BEV figures, the
shipped base."""
