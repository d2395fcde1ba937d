"""``opstui demo``: a small, real, moving world on a local store.

``setup`` prepares the directory (lock, seeded store, opstui.toml), ``world``
starts and stops what moves (``service``, ``simulator``, ``traffic``, the
poller and the drift checks), and the demo's pipelines run as real stage
processes of the runner (``devops`` and ``training``). Nothing here imports
Textual: the console is opened by ``opstui.cli.demo``.
"""
