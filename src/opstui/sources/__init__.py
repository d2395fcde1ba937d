"""Remote endpoints: fetching and reading them (health, Prometheus, JSON, MLflow), and the
poll scheduler. IO lives here; the arithmetic on what is fetched lives in ``analysis``.
"""
