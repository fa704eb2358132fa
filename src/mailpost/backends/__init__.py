"""Email backends: ``mailpost.backends.<name>.EmailBackend`` for each built-in way to send."""
