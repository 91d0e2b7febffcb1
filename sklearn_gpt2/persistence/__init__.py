"""Saving and loading: one description of a fitted estimator, read and written by three codecs."""
