"""The read models the console and the CLI share, free of Textual:
``snapshot`` (``SnapshotReader``: everything one console refresh shows),
``endpoints`` (an endpoint's state, error rates and SLO burn) and
``models`` (a model's versions, deployments and drift).
"""
