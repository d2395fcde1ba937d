"""Automation policies: triggers -> guard rails -> the operator's own action path.

``decide`` holds the guard rails (pure, clock injected); what a policy sees
of the world (``Reading``) comes from the console's snapshot and the store
(live) or from the recorded history (replay); acting goes through
``runner.actions`` with the actor ``policy:NAME``. Configured in
``[policies.NAME]`` (``config/policies.py``).
"""
