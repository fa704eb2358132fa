"""The capture store's public path; the store itself is :mod:`mailpost._preview_store`,
below the transport layer, so that the ``capture`` mailer can write it."""

from mailpost._preview_store import DEFAULT_CAPTURE_PATH, CapturedMessage, CaptureStore

__all__ = ["DEFAULT_CAPTURE_PATH", "CaptureStore", "CapturedMessage"]
