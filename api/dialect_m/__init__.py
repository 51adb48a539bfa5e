"""Dialect M: the mypostshare-compatible API (seed 004) under `/api/v1`.

`schemas` holds its request/response shapes, `shapes` its vocabulary (pure
mapping functions), `lookups` its scoped reads, and `routes` the thin router
over the services dialect U uses (posts, connect sessions, accounts).
"""
