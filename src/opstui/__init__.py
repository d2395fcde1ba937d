"""opstui: a terminal console for operators of DevOps and MLOps pipelines."""

__version__ = "0.1.0"
