"""Stage 3, Deliver: Dramatiq actors that render, compose and send outbox rows."""
