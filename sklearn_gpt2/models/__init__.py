"""Checkpoints and the torch modules the estimators train: one module per kind of head."""
