"""Email backends: ``mailpost.backends.<name>.EmailBackend`` for each built-in transport."""
