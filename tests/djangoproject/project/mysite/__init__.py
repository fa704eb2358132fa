"""A minimal Django project whose code sends mail through mailpost."""
