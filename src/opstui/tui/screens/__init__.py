"""The console's screens, one a module: the dashboard, a pipeline, a model, an endpoint,
the audit trail, and the dialogs (``modals``). Screens import widgets, never each
other, and never the app: what they need is given when they are built, and what
they ask for is a message (``tui/messages.py``)."""
