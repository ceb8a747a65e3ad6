"""The Deliver stage: Dramatiq actors that send outbox rows."""
