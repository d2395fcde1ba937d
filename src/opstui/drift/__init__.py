"""A model's drift check: ``check`` (compute_drift, backfill, the current
window), ``reference`` (which version, its reference summary) and
``records`` (the ``DriftCheck`` type, to and from the store).
"""
