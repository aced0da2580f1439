"""Shared test fixtures."""

pytest_plugins = ["tests.emulator_fixtures"]
