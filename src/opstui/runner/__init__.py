"""Executing pipelines and the operator actions built on them.

``process`` runs one stage as a subprocess in its own process group;
``execute`` runs a queued run's stages in order; ``actions`` plans, guards,
audits and starts run / retry / rollback / retrain for the CLI and the TUI.
"""
