"""Rooms bounded context: rooms and memberships in PostgreSQL, membership cache in Redis."""
