"""Shared test fixtures."""

pytest_plugins = ["tests.emulator_fixtures", "tests.functional.slack_world"]
