"""Preview and capture: see every message a program sends, in the browser.

* :class:`CaptureStore` and the ``capture://`` mailer keep messages durably;
* :class:`SMTPCaptureServer` stores what any program sends over SMTP;
* :class:`PreviewApp` (WSGI) lists and shows messages from capture stores, file-backend
  directories, spools and code-defined previews; :class:`PreviewServer` serves it;
* :mod:`mailpost.preview.lint` checks a message for deliverability problems.

``mailpost preview`` runs all of it from the command line (docs/preview.md).
"""

from __future__ import annotations

from mailpost._preview_store import DEFAULT_CAPTURE_PATH, CapturedMessage, CaptureStore
from mailpost.preview.app import PreviewApp
from mailpost.preview.lint import Finding, lint, lint_message
from mailpost.preview.server import PreviewServer, SMTPCaptureServer
from mailpost.preview.sources import (
    CaptureSource,
    DirectorySource,
    PreviewsSource,
    Source,
    SpoolSource,
    preview,
    registered_previews,
)

__all__ = [
    "DEFAULT_CAPTURE_PATH",
    "CaptureSource",
    "CaptureStore",
    "CapturedMessage",
    "DirectorySource",
    "Finding",
    "PreviewApp",
    "PreviewServer",
    "PreviewsSource",
    "SMTPCaptureServer",
    "Source",
    "SpoolSource",
    "lint",
    "lint_message",
    "preview",
    "registered_previews",
    "sources_from_mailers",
]


def sources_from_mailers() -> list[Source]:
    """Sources for every configured mailer that keeps messages: ``capture://`` stores,
    file-backend directories and spools (one source per kind; the first of each wins)."""
    from mailpost.backends.capture import CaptureBackend
    from mailpost.backends.filebased import FileBackend
    from mailpost.backends.spool import SpoolBackend
    from mailpost.handler import mailers

    found: dict[str, Source] = {}
    for alias in list(mailers):
        try:
            backend = mailers[alias]
        except Exception:
            continue
        if isinstance(backend, CaptureBackend):
            found.setdefault("capture", CaptureSource(backend.store))
        elif isinstance(backend, FileBackend):
            found.setdefault("file", DirectorySource(backend.file_path))
        elif isinstance(backend, SpoolBackend):
            found.setdefault("spool", SpoolSource(backend.path))
    return list(found.values())
