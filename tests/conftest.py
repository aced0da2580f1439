"""Shared test fixtures."""

pytest_plugins = [
    "tests.aws_fixtures",
    "tests.emulator_fixtures",
    "tests.functional.slack_world",
]
