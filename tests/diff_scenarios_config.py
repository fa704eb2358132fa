"""Differential scenarios: settings, mailers, the send functions, errors and warnings."""

from __future__ import annotations

from typing import Any

from diff_harness import Side, scenario

LOCMEM = {"default": {"BACKEND": "{backends}.locmem.EmailBackend"}}


@scenario({"MAILERS": LOCMEM})
def send_mail_under_mailers(side: Side) -> Any:
    return side.mail.send_mail("Subject", "Body", "from@example.com", ["to@example.com"])


@scenario({"EMAIL_BACKEND": "{backends}.locmem.EmailBackend"})
def send_mail_legacy_settings(side: Side) -> Any:
    return side.mail.send_mail("Subject", "Body", "from@example.com", ["to@example.com"])


@scenario({"MAILERS": {"default": {"BACKEND": "no.such.Backend"}}})
def unknown_backend_path(side: Side) -> Any:
    return side.mail.send_mail("Subject", "Body", "from@example.com", ["to@example.com"])


@scenario({"MAILERS": LOCMEM})
def no_such_mailer(side: Side) -> Any:
    return side.mail.mailers["nope"]
