"""MLflow's REST API: experiments, recent runs, registered models, aliases.

A small client on httpx rather than MLflow's own: ``mlflow`` is ~850 MB and
seconds to import, and we need six calls. The package reads as the road a
poll takes: ``api`` (what MLflow returns, and each call written once: what
to send and how to read the answer), ``rest`` (the clients that move the
bytes, and the one error every failure becomes), ``poll`` (one poll as an
``Observation`` and an ``MlflowSnapshot``) and ``sync`` (the snapshot into
the run store).
"""
