"""Queries and row helpers over the tables. Functions take the caller's
session or connection and never commit: transactions open at the entry
points (accept, process, deliver, actions, the sweep, read-only views)."""
