"""opstui's own alerts: what should fire (``judge``), kept in the store from
firing to resolved (``store/alerts.py``), and sent to Alertmanager (``send``)."""
