"""Delivery: the sender now, the durable outbox next."""
