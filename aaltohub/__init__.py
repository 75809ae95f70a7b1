"""Composition root: settings, the ``aaltohub`` CLI, embedded servers and service wiring."""
