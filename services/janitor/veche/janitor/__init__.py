"""Janitor: the worker that expires empty rooms, times out vanished members, cleans Redis."""
