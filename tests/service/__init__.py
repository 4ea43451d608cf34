"""Tests of the wall-bounce service (unit tests of its pure parts, integration tests against the simulators)."""
