"""Adapters to web frameworks and task queues; each is an optional extra."""
