"""A model's drift check: ``check`` (compute_drift, backfill, references, records)."""
