"""Arithmetic on what opstui stores: error rates and SLO burn, drift statistics.

Pure functions over numbers: no store, no network. numpy, scipy and
scikit-learn, where used, are imported inside the functions that need them.
"""
