"""Airflow 3 as a source: its REST API v2 read into runs and stages (``api``)."""
