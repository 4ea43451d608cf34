"""Registers the shared fixtures of the real local parts (control plane, Prometheus) for every test folder."""

pytest_plugins = ["wallbounce_local.pytest_plugin"]
