"""The sklearn contract and the fit/predict skeleton both estimators share."""
