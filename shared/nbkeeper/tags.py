"""Notebook tags nbkeeper writes and reads: one definition for the worker, the chat-ops
directory and the lease keeper. (The opt-out tag is configurable: `policy.opt_out_tag`.)"""

from __future__ import annotations

# The Slack user id of the person who created the notebook through nbkeeper; written at create
# by the worker, read by the directory (who may act on it) and the keeper (whom to warn).
OWNER_TAG = "nbkeeper.owner"
# The id of the create command that made the notebook: a redelivered create adopts it instead
# of creating a second one.
COMMAND_TAG = "nbkeeper.command"
