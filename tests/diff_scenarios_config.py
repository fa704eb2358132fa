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


# -- a Django-style third-party backend (takes **kwargs), under the legacy settings -------

SEEN: list[Any] = []


class RecordingBackend:
    """A backend written for Django: ``**kwargs`` constructor, records what it was given."""

    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        self.fail_silently = fail_silently
        SEEN.append(["init", dict(sorted(kwargs.items())), fail_silently])

    def send_messages(self, messages: list[Any]) -> int:
        def connection(message: Any) -> Any:
            found = vars(message)  # not the attribute: Django 6.1 warns on reading it
            return found.get("_connection", found.get("connection"))

        SEEN.append(["send", [connection(m) is self for m in messages]])
        return len(messages)


RECORDING = {
    "EMAIL_BACKEND": "diff_scenarios_config.RecordingBackend",
    "EMAIL_HOST_USER": "settings-user",
    "EMAIL_HOST_PASSWORD": "settings-password",
}


@scenario(RECORDING)
def auth_arguments_reach_a_kwargs_backend(side: Side) -> Any:
    SEEN.clear()
    side.mail.send_mail(*MSG, auth_user="user", auth_password="secret")
    side.mail.send_mail(*MSG, auth_user="only-user")
    return [entry for entry in SEEN if entry[0] == "init"]


@scenario(RECORDING)
def fail_silently_reaches_a_kwargs_backend(side: Side) -> Any:
    SEEN.clear()
    side.mail.send_mail(*MSG, fail_silently=True)
    return [entry for entry in SEEN if entry[0] == "init"]


@scenario(RECORDING)
def get_connection_passes_keywords_to_a_kwargs_backend(side: Side) -> Any:
    SEEN.clear()
    side.mail.get_connection(username="x", colour="red")
    return list(SEEN)


@scenario(RECORDING)
def send_mass_mail_connection_is_set_on_each_message(side: Side) -> Any:
    connection = RecordingBackend()
    SEEN.clear()
    sent = side.mail.send_mass_mail([MSG, MSG], connection=connection)
    return [sent, list(SEEN)]


@scenario(RECORDING)
def send_mail_connection_is_set_on_the_message(side: Side) -> Any:
    connection = RecordingBackend()
    SEEN.clear()
    sent = side.mail.send_mail(*MSG, connection=connection)
    return [sent, list(SEEN)]


# -- the mailers mapping and the settings a send reads ------------------------------------

TWO_MAILERS = {
    "MAILERS": {
        "default": {"BACKEND": "{backends}.locmem.EmailBackend"},
        "bulk": {"BACKEND": "{backends}.dummy.EmailBackend"},
    }
}


@scenario(TWO_MAILERS)
def mailers_mapping(side: Side) -> Any:
    mailers = side.mail.mailers
    return [
        mailers["bulk"],
        mailers["bulk"].alias,
        mailers.default.alias,
        list(mailers),
        "bulk" in mailers,
        "nope" in mailers,
        mailers.get("nope"),
        mailers.get("bulk"),
        mailers["default"] is mailers["default"],
    ]


@scenario(TWO_MAILERS)
def send_mail_using_an_alias(side: Side) -> Any:
    return [
        side.mail.send_mail(*MSG, using="bulk"),
        side.mail.send_mail(*MSG, using="default"),
    ]


@scenario({**TWO_MAILERS, "DEFAULT_FROM_EMAIL": "Shop <shop@example.com>"})
def send_mail_from_default_from_email(side: Side) -> Any:
    return side.mail.send_mail("Subject", "Body", None, ["to@example.com"])


@scenario(TWO_MAILERS)
def send_mail_with_lazy_strings(side: Side) -> Any:
    from django.utils.translation import gettext_lazy

    return side.mail.send_mail(
        gettext_lazy("Subject"), gettext_lazy("Body"), "from@example.com", ["to@example.com"]
    )


@scenario(TWO_MAILERS)
def message_send_using(side: Side) -> Any:
    return side.mail.EmailMessage(*MSG).send(using="bulk")


@scenario(TWO_MAILERS)
def message_send_unknown_alias(side: Side) -> Any:
    return side.mail.EmailMessage(*MSG).send(using="nope")


@scenario({"MAILERS": {"default": {"BACKEND": "no.such.Backend"}}})
def invalid_mailer_pickles(side: Side) -> Any:
    import pickle

    from django.core.exceptions import ImproperlyConfigured

    try:
        _ = side.mail.mailers.default
    except side.mail.InvalidMailer as exc:
        copy = pickle.loads(pickle.dumps(exc))
        return [type(copy).__name__, str(copy), isinstance(copy, ImproperlyConfigured)]
    return None


@scenario()
def no_mail_settings_default_mailer_is_smtp(side: Side) -> Any:
    backend = side.mail.mailers.default
    return [backend, backend.alias, backend.host, backend.port]


@scenario()
def no_mail_settings_get_connection(side: Side) -> Any:
    return [side.mail.get_connection(), side.mail.get_connection(side.backend("locmem"))]


@scenario()
def no_mail_settings_mailers_lookups(side: Side) -> Any:
    return [side.mail.mailers["default"], side.mail.mailers.get("default")]


@scenario(
    {"MAILERS": {"default": {"BACKEND": "{backends}.locmem.EmailBackend", "OPTION": {}}}},
    deliberate="a MAILERS entry key other than BACKEND/OPTIONS is an InvalidMailer",
)
def mailer_entry_with_an_unknown_key(side: Side) -> Any:
    return side.mail.mailers.default
