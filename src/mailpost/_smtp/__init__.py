"""SMTP internals: pure envelope/reply logic and the connection machinery."""
