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


# -- exceptions: classes and messages --------------------------------------------------------

SMTP_HOST = {"OPTIONS": {"host": "localhost"}}


@scenario({"MAILERS": {"default": {"BACKEND": "os.path.NoSuchBackend"}}})
def backend_class_missing_from_module(side: Side) -> Any:
    return side.mail.mailers.default


@scenario({"MAILERS": {"default": {"BACKEND": "nodots"}}})
def backend_path_without_dots(side: Side) -> Any:
    return side.mail.mailers.default


@scenario({"MAILERS": {"default": {"BACKEND": "no.such.Backend"}}})
def invalid_mailer_is_caught_as_improperly_configured(side: Side) -> Any:
    from django.core.exceptions import ImproperlyConfigured

    try:
        _ = side.mail.mailers.default
    except ImproperlyConfigured as exc:
        return ["caught", type(exc).__name__]
    return "not caught"


@scenario({"MAILERS": LOCMEM})
def mailer_does_not_exist_is_caught_as_key_error_and_invalid_mailer(side: Side) -> Any:
    from django.core.exceptions import ImproperlyConfigured

    caught = []
    for kind in (KeyError, side.mail.InvalidMailer, ImproperlyConfigured):
        try:
            side.mail.mailers["nope"]
        except kind:
            caught.append(kind.__name__)
    return caught


@scenario({"MAILERS": LOCMEM})
def mailer_does_not_exist_takes_alias_only(side: Side) -> Any:
    return side.mail.MailerDoesNotExist("some text")


@scenario({"MAILERS": LOCMEM})
def mailer_does_not_exist_built_from_alias(side: Side) -> Any:
    err = side.mail.MailerDoesNotExist(alias="x")
    return [str(err), err.args]


@scenario({"MAILERS": LOCMEM})
def invalid_mailer_message_names_the_alias(side: Side) -> Any:
    return [str(side.mail.InvalidMailer("bad", alias="x")), str(side.mail.InvalidMailer("bad"))]


@scenario({"MAILERS": {}})
def empty_mailers_have_no_default(side: Side) -> Any:
    return side.mail.mailers.default


@scenario({"MAILERS": {"other": {"BACKEND": "{backends}.locmem.EmailBackend"}}})
def send_mail_without_a_default_mailer(side: Side) -> Any:
    return side.mail.send_mail("Subject", "Body", "from@example.com", ["to@example.com"])


@scenario({"MAILERS": LOCMEM})
def send_mail_using_an_unknown_alias(side: Side) -> Any:
    return side.mail.send_mail("S", "B", "from@example.com", ["to@example.com"], using="nope")


# -- get_connection ----------------------------------------------------------------------


@scenario({"MAILERS": LOCMEM})
def get_connection_under_mailers(side: Side) -> Any:
    return side.mail.get_connection()


@scenario({"MAILERS": LOCMEM})
def get_connection_with_a_backend_under_mailers(side: Side) -> Any:
    return side.mail.get_connection(side.backend("locmem"))


@scenario({"MAILERS": LOCMEM})
def get_connection_fail_silently_positionally(side: Side) -> Any:
    return side.mail.get_connection(None, True)


@scenario({"MAILERS": LOCMEM})
def get_connection_ignores_unknown_keywords_under_mailers(side: Side) -> Any:
    return side.mail.get_connection(foo=1)


@scenario({"EMAIL_BACKEND": "{backends}.locmem.EmailBackend"})
def get_connection_ignores_unknown_keywords_legacy(side: Side) -> Any:
    return side.mail.get_connection(foo=1, bar=2)


@scenario({"EMAIL_BACKEND": "{backends}.locmem.EmailBackend"})
def get_connection_with_a_backend_legacy(side: Side) -> Any:
    conn = side.mail.get_connection(side.backend("locmem"), fail_silently=True)
    return [conn, conn.alias]


# -- deprecated arguments: warnings and the combinations Django rejects -------------------

MSG = ("Subject", "Body", "from@example.com", ["to@example.com"])


@scenario({"MAILERS": LOCMEM})
def send_mail_fail_silently_positionally(side: Side) -> Any:
    return side.mail.send_mail(*MSG, True)


@scenario({"MAILERS": LOCMEM})
def send_mail_three_arguments_positionally(side: Side) -> Any:
    return side.mail.send_mail(*MSG, False, "user", "secret")


@scenario({"MAILERS": LOCMEM})
def send_mail_fail_silently_false_is_not_deprecated(side: Side) -> Any:
    return side.mail.send_mail(*MSG, fail_silently=False)


@scenario({"MAILERS": LOCMEM})
def send_mail_fail_silently(side: Side) -> Any:
    return side.mail.send_mail(*MSG, fail_silently=True)


@scenario({"MAILERS": LOCMEM})
def send_mail_auth_password(side: Side) -> Any:
    return side.mail.send_mail(*MSG, auth_password="secret")


@scenario({"MAILERS": LOCMEM})
def send_mail_connection(side: Side) -> Any:
    return side.mail.send_mail(*MSG, connection=side.mail.mailers.default)


@scenario({"MAILERS": LOCMEM})
def send_mail_using_and_fail_silently(side: Side) -> Any:
    return side.mail.send_mail(*MSG, fail_silently=True, using="default")


@scenario({"MAILERS": LOCMEM})
def send_mail_using_and_connection(side: Side) -> Any:
    return side.mail.send_mail(*MSG, connection=side.mail.mailers.default, using="default")


@scenario({"MAILERS": LOCMEM})
def send_mail_using_and_auth_user(side: Side) -> Any:
    return side.mail.send_mail(*MSG, auth_user="user", using="default")


@scenario({"MAILERS": LOCMEM})
def send_mail_connection_and_fail_silently(side: Side) -> Any:
    return side.mail.send_mail(*MSG, fail_silently=True, connection=side.mail.mailers.default)


@scenario({"MAILERS": LOCMEM})
def send_mail_connection_and_auth_user(side: Side) -> Any:
    return side.mail.send_mail(*MSG, auth_user="user", connection=side.mail.mailers.default)


@scenario({"MAILERS": LOCMEM})
def send_mass_mail_positionally(side: Side) -> Any:
    return side.mail.send_mass_mail([MSG], False, "user")


@scenario({"MAILERS": LOCMEM})
def send_mass_mail_connection(side: Side) -> Any:
    return side.mail.send_mass_mail([MSG, MSG], connection=side.mail.mailers.default)


@scenario({"MAILERS": LOCMEM})
def message_send_fail_silently(side: Side) -> Any:
    return side.mail.EmailMessage(*MSG).send(fail_silently=True)


@scenario({"EMAIL_BACKEND": "{backends}.locmem.EmailBackend"})
def send_mail_fail_silently_legacy(side: Side) -> Any:
    return side.mail.send_mail(*MSG, fail_silently=True)


@scenario({"EMAIL_BACKEND": "{backends}.locmem.EmailBackend"})
def send_mail_using_and_fail_silently_legacy(side: Side) -> Any:
    return side.mail.send_mail(*MSG, fail_silently=True, using="default")


# -- legacy settings (no MAILERS) ----------------------------------------------------------

LEGACY_LOCMEM = {"EMAIL_BACKEND": "{backends}.locmem.EmailBackend"}


@scenario(LEGACY_LOCMEM)
def legacy_default_mailer_has_no_alias(side: Side) -> Any:
    return [side.mail.mailers.default, side.mail.mailers.default.alias]


@scenario(LEGACY_LOCMEM, deliberate="the legacy default mailer is listed as 'default'")
def legacy_settings_list_the_default_alias(side: Side) -> Any:
    return ["default" in side.mail.mailers, list(side.mail.mailers)]


@scenario(LEGACY_LOCMEM)
def legacy_mailers_get_default(side: Side) -> Any:
    return [side.mail.mailers.get("default"), side.mail.mailers["default"].alias]


@scenario(LEGACY_LOCMEM)
def legacy_unknown_alias(side: Side) -> Any:
    return side.mail.mailers["other"]


@scenario(
    {
        "EMAIL_BACKEND": "{backends}.smtp.EmailBackend",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": True,
    }
)
def legacy_tls_and_ssl_together(side: Side) -> Any:
    return side.mail.send_mail(*MSG)


@scenario(
    {
        "EMAIL_BACKEND": "{backends}.smtp.EmailBackend",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": True,
    }
)
def legacy_tls_and_ssl_together_get_connection(side: Side) -> Any:
    return side.mail.get_connection()


# -- public names, deprecated ones included ------------------------------------------------

DJANGO_61_ALL = (
    "InvalidMailer",
    "MailerDoesNotExist",
    "CachedDnsName",
    "DNS_NAME",
    "EmailMessage",
    "EmailMultiAlternatives",
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "make_msgid",
    "mailers",
    "get_connection",
    "send_mail",
    "send_mass_mail",
    "mail_admins",
    "mail_managers",
    "EmailAlternative",
    "EmailAttachment",
    "SafeMIMEText",
    "SafeMIMEMultipart",
    "forbid_multi_line_headers",
)


@scenario()
def every_public_name_of_django_61(side: Side) -> Any:
    return [name for name in DJANGO_61_ALL if hasattr(side.mail, name)]


@scenario(deliberate="BadHeaderError is a supported mailpost class, not deprecated")
def bad_header_error_is_not_deprecated(side: Side) -> Any:
    return issubclass(side.mail.BadHeaderError, ValueError)


@scenario()
def dns_name_cache_reset_with_delattr(side: Side) -> Any:
    first = str(side.mail.DNS_NAME)
    delattr(side.mail.DNS_NAME, "_fqdn")
    return [first == str(side.mail.DNS_NAME), type(side.mail.DNS_NAME).__name__]


@scenario()
def dns_name_fresh_cache_has_nothing_to_delete(side: Side) -> Any:
    return delattr(side.mail.CachedDnsName(), "_fqdn")


@scenario()
def safe_mime_text(side: Side) -> Any:
    text = side.mail.SafeMIMEText("hi")
    text["Subject"] = "héllo"
    return [text.as_string(), text.encoding, type(text).__name__]


@scenario()
def safe_mime_text_header_injection(side: Side) -> Any:
    text = side.mail.SafeMIMEText("hi", "html")
    text["Subject"] = "hi\nBcc: victim@example.com"


@scenario()
def safe_mime_multipart(side: Side) -> Any:
    multi = side.mail.SafeMIMEMultipart("alternative", encoding="utf-8")
    return [multi.get_content_type(), multi.encoding, multi["MIME-Version"]]


@scenario()
def forbid_multi_line_headers_encodes(side: Side) -> Any:
    forbid = side.mail.forbid_multi_line_headers
    return [
        forbid("Subject", "héllo", "utf-8"),
        forbid("Subject", "é", "iso-8859-1"),
        forbid("X-Count", 5, None),
        forbid("To", "Jo <j@example.com>, k@example.com", "utf-8"),
        forbid("To", "Jö <j@example.com>, k@example.com", "utf-8"),
        forbid("From", "j@exämple.com", "utf-8"),
    ]


@scenario()
def forbid_multi_line_headers_rejects_newlines(side: Side) -> Any:
    return side.mail.forbid_multi_line_headers("Subject", "a\rb", "utf-8")
