"""Slack edge pieces: request verification, command grammar, Block Kit rendering, web client.

Every module here is stdlib + pydantic (+ httpx for `api`), so the Slack webhook's cold start only
pays for what it imports. slack_sdk is a test oracle and is never imported from here.
"""
