"""SMTP internals: pure envelope/reply logic, and the wire, sessions, pool and batches."""
