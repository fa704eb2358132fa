"""The do-not-send list's public path; the store itself is :mod:`mailpost._suppressions`,
below the transport layer, so that the ``suppress`` mailer can read it."""

from mailpost._suppressions import DEFAULT_PATH, Suppression, SuppressionStore, open_suppressions

__all__ = ["DEFAULT_PATH", "Suppression", "SuppressionStore", "open_suppressions"]
