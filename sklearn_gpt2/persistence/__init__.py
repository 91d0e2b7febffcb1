"""Saving and loading: one description of a fitted estimator, read and written by two codecs."""
