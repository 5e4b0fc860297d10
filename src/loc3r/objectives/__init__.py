"""Training objectives: one module per objective (targets, head, loss, default weight)."""
