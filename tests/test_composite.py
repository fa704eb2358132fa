"""Composite mailers: failover and round robin, over real SMTP servers, locmem and the spool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mailpost
from backend_contract import BackendContract, Delivered, outbox_delivered, parse
from helpers import make_message
from mailpost import DeliveryError, EmailMessage, InvalidMailer
from mailpost._urls import parse_mailer_url
from mailpost.backends.failover import EmailBackend as FailoverEmailBackend
from mailpost.backends.failover import FailoverBackend
from mailpost.backends.round_robin import EmailBackend as RoundRobinEmailBackend
from mailpost.backends.round_robin import RoundRobinBackend, SmoothWeightedRoundRobin
from mailpost.spool import Spool
from smtp_fixtures import CLIENT_TIMEOUT
from smtpd_harness import Faults, SMTPServer
from spool_helpers import spool_entry

FAILOVER = "mailpost.backends.failover.EmailBackend"
ROUND_ROBIN = "mailpost.backends.round_robin.EmailBackend"
LOCMEM = {"BACKEND": "mailpost.backends.locmem.EmailBackend"}

MakeServer = Callable[..., SMTPServer]


def smtp(port: int) -> dict[str, Any]:
    return {
        "BACKEND": "mailpost.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": CLIENT_TIMEOUT},
    }


def configure_failover(primary: int, backup: int, **options: Any) -> None:
    mailpost.configure(
        MAILERS={
            "primary": smtp(primary),
            "backup": smtp(backup),
            "fo": {"BACKEND": FAILOVER, "OPTIONS": {"mailers": ["primary", "backup"], **options}},
        }
    )


def subjects(server: SMTPServer) -> list[str]:
    return [str(parse(m.data)["Subject"]) for m in server.messages]


# -- failover over SMTP ---------------------------------------------------------------------


def test_dotted_paths_are_the_descriptive_classes() -> None:
    assert FailoverEmailBackend is FailoverBackend
    assert RoundRobinEmailBackend is RoundRobinBackend


def test_primary_down_sends_through_backup(make_smtp_server: MakeServer, closed_port: int) -> None:
    backup = make_smtp_server()
    configure_failover(closed_port, backup.port)
    msg = make_message(1)
    assert mailpost.mailers["fo"].send_messages([msg]) == 1
    assert subjects(backup) == ["Message 1"]
    assert msg.delivery is not None
    assert msg.delivery.ok
    assert msg.delivery.mailer == "backup"
    assert msg.sent_using == "fo"
    assert msg.delivery.response is not None
    assert msg.delivery.response[0] == 250


def test_primary_421_at_mail_sends_through_backup(make_smtp_server: MakeServer) -> None:
    primary = make_smtp_server(faults=Faults(close_after=0))  # 421 at every MAIL
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    msg = make_message(1)
    assert mailpost.mailers["fo"].send_messages([msg]) == 1
    assert primary.messages == []
    assert subjects(backup) == ["Message 1"]
    assert msg.delivery is not None
    assert msg.delivery.mailer == "backup"


def test_primary_4xx_at_data_goes_to_backup_with_the_same_message_id(
    make_smtp_server: MakeServer,
) -> None:
    primary = make_smtp_server(faults=Faults(data_replies={1: "451 4.3.0 Try later"}))
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    msg = make_message(1)
    assert mailpost.mailers["fo"].send_messages([msg]) == 1
    [got] = backup.messages
    assert msg.delivery is not None
    assert msg.delivery.message_id is not None
    assert parse(got.data)["Message-ID"] == msg.delivery.message_id
    assert got.rcpt_tos == ["rcpt-1@example.com"]


def test_primary_permanent_refusal_is_final_and_backup_is_not_tried(
    make_smtp_server: MakeServer,
) -> None:
    primary = make_smtp_server(
        faults=Faults(refuse={"rcpt-1@example.com": "550 5.1.1 No such user"})
    )
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    msg = make_message(1)
    with pytest.raises(DeliveryError) as info:
        mailpost.mailers["fo"].send_messages([msg])
    assert backup.sessions == 0
    assert backup.messages == []
    assert msg.delivery is not None
    assert not msg.delivery.sent
    assert msg.delivery.mailer == "primary"
    assert msg.delivery.refused["rcpt-1@example.com"][0] == 550
    assert not msg.delivery.retryable
    assert info.value.results[0] is msg.delivery


def test_primary_5xx_at_data_raises_and_never_reaches_backup(make_smtp_server: MakeServer) -> None:
    primary = make_smtp_server(faults=Faults(data_replies={1: "554 5.6.0 Content rejected"}))
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    msg = make_message(1)
    with pytest.raises(DeliveryError):
        mailpost.mailers["fo"].send_messages([msg])
    assert backup.sessions == 0
    assert msg.delivery is not None
    assert msg.delivery.error_code == 554


def test_partial_acceptance_sends_only_the_refused_recipients_to_backup(
    make_smtp_server: MakeServer,
) -> None:
    primary = make_smtp_server(faults=Faults(refuse={"b@example.com": "452 4.2.2 Mailbox full"}))
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    msg = make_message(1, to=["a@example.com", "b@example.com"])
    msg.bcc = ["c@example.com"]
    assert mailpost.mailers["fo"].send_messages([msg]) == 1
    [first] = primary.messages
    [second] = backup.messages
    assert sorted(first.rcpt_tos) == ["a@example.com", "c@example.com"]
    assert second.rcpt_tos == ["b@example.com"]  # never re-sent to a@ or c@
    assert parse(second.data)["Message-ID"] == parse(first.data)["Message-ID"]
    assert parse(second.data)["To"] == parse(first.data)["To"]  # headers unchanged
    assert msg.delivery is not None
    assert msg.delivery.ok
    assert sorted(msg.delivery.accepted) == ["a@example.com", "b@example.com", "c@example.com"]
    assert msg.delivery.mailer == "primary"  # the first mailer that took the message


def test_partial_acceptance_with_a_permanent_refusal_does_not_fail_over(
    make_smtp_server: MakeServer,
) -> None:
    primary = make_smtp_server(faults=Faults(refuse={"b@example.com": "550 5.1.1 No such user"}))
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    msg = make_message(1, to=["a@example.com", "b@example.com"])
    with pytest.raises(DeliveryError):
        mailpost.mailers["fo"].send_messages([msg])
    assert backup.sessions == 0
    assert msg.delivery is not None
    assert msg.delivery.sent
    assert msg.delivery.accepted == ["a@example.com"]
    assert msg.delivery.refused == {"b@example.com": (550, "5.1.1 No such user")}


def test_all_mailers_down_raises_one_error_naming_each(closed_port: int) -> None:
    from smtpd_harness import unused_port

    configure_failover(closed_port, unused_port())
    messages = [make_message(1), make_message(2)]
    with pytest.raises(DeliveryError, match="2 of 2 message") as info:
        mailpost.mailers["fo"].send_messages(messages)
    assert len(info.value.results) == 2
    for msg in messages:
        assert msg.delivery is not None
        assert not msg.delivery.sent
        assert msg.delivery.attempted is False
        assert msg.delivery.retryable
        assert msg.delivery.mailer == "backup"  # the last one tried
        assert msg.delivery.error is not None
        assert "'primary'" in msg.delivery.error
        assert "'backup'" in msg.delivery.error


def test_all_down_with_fail_silently_returns_zero(closed_port: int) -> None:
    from smtpd_harness import unused_port

    configure_failover(closed_port, unused_port(), fail_silently=True)
    msg = make_message(1)
    assert mailpost.mailers["fo"].send_messages([msg]) == 0
    assert msg.delivery is not None
    assert not msg.delivery.sent


def test_only_the_failed_messages_of_a_batch_go_to_backup(make_smtp_server: MakeServer) -> None:
    primary = make_smtp_server(faults=Faults(mail_replies={2: "451 4.3.0 Busy"}))
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    messages = [make_message(1), make_message(2), make_message(3)]
    assert mailpost.mailers["fo"].send_messages(messages) == 3
    assert sorted(subjects(primary)) == ["Message 1", "Message 3"]
    assert subjects(backup) == ["Message 2"]
    assert [m.delivery.mailer for m in messages if m.delivery] == ["primary", "backup", "primary"]


def test_open_mailer_opens_inner_mailers_lazily_and_reuses_them(
    make_smtp_server: MakeServer,
) -> None:
    primary = make_smtp_server()
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    backend = mailpost.mailers["fo"]
    with backend:
        assert primary.sessions == 0  # nothing opened before a message needs it
        for n in range(3):
            assert backend.send_messages([make_message(n)]) == 1
        assert backend.open() is False
    assert primary.sessions == 1
    assert backup.sessions == 0
    assert len(primary.messages) == 3


def test_open_mailer_with_primary_down_uses_backup_for_every_message(
    make_smtp_server: MakeServer, closed_port: int
) -> None:
    backup = make_smtp_server()
    configure_failover(closed_port, backup.port)
    with mailpost.mailers["fo"] as backend:
        assert backend.send_messages([make_message(1)]) == 1
        assert backend.send_messages([make_message(2)]) == 1
    assert subjects(backup) == ["Message 1", "Message 2"]
    assert backup.sessions == 1


def test_a_bad_header_is_not_tried_on_another_mailer(make_smtp_server: MakeServer) -> None:
    primary = make_smtp_server()
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    bad = make_message(1)
    bad.subject = "Hi\nBcc: victim@example.com"
    with pytest.raises(ValueError, match="Subject"):
        mailpost.mailers["fo"].send_messages([bad, make_message(2)])
    assert subjects(primary) == ["Message 2"]
    assert backup.sessions == 0


# -- async ----------------------------------------------------------------------------------


def test_asend_with_primary_down_sends_through_backup(
    make_smtp_server: MakeServer, closed_port: int
) -> None:
    backup = make_smtp_server()
    configure_failover(closed_port, backup.port)
    messages = [make_message(1), make_message(2)]
    assert asyncio.run(mailpost.mailers["fo"].asend_messages(messages)) == 2
    assert subjects(backup) == ["Message 1", "Message 2"]
    assert [m.delivery.mailer for m in messages if m.delivery] == ["backup", "backup"]


def test_async_open_mailer_fails_over_on_4xx_and_keeps_partial_acceptance(
    make_smtp_server: MakeServer,
) -> None:
    primary = make_smtp_server(faults=Faults(refuse={"b@example.com": "450 4.2.1 Busy"}))
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    msg = make_message(1, to=["a@example.com", "b@example.com"])

    async def run() -> int:
        async with mailpost.mailers["fo"] as backend:
            return await backend.asend_messages([msg])

    assert asyncio.run(run()) == 1
    assert primary.messages[0].rcpt_tos == ["a@example.com"]
    assert backup.messages[0].rcpt_tos == ["b@example.com"]
    assert msg.delivery is not None
    assert msg.delivery.ok


def test_asend_permanent_refusal_does_not_fail_over(make_smtp_server: MakeServer) -> None:
    primary = make_smtp_server(faults=Faults(refuse={"rcpt-1@example.com": "550 5.1.1 Unknown"}))
    backup = make_smtp_server()
    configure_failover(primary.port, backup.port)
    with pytest.raises(DeliveryError):
        asyncio.run(mailpost.mailers["fo"].asend_messages([make_message(1)]))
    assert backup.sessions == 0


# -- round robin ----------------------------------------------------------------------------


def test_smooth_weighted_round_robin_sequence() -> None:
    three_one = SmoothWeightedRoundRobin([3, 1])
    assert [three_one.pick() for _ in range(8)] == [0, 0, 1, 0, 0, 0, 1, 0]
    five_one_one = SmoothWeightedRoundRobin([5, 1, 1])
    assert [five_one_one.pick() for _ in range(7)] == [0, 0, 1, 0, 2, 0, 0]
    with pytest.raises(ValueError):
        SmoothWeightedRoundRobin([0, 0])


def configure_round_robin(a: int, b: int, **options: Any) -> None:
    mailpost.configure(
        MAILERS={
            "a": smtp(a),
            "b": smtp(b),
            "rr": {"BACKEND": ROUND_ROBIN, "OPTIONS": {"mailers": ["a", "b"], **options}},
        }
    )


def test_round_robin_spreads_messages_by_weight_over_real_servers(
    make_smtp_server: MakeServer,
) -> None:
    a = make_smtp_server()
    b = make_smtp_server()
    configure_round_robin(a.port, b.port, weights=[3, 1])
    messages = [make_message(n) for n in range(1, 9)]
    assert mailpost.mailers["rr"].send_messages(messages) == 8
    assert sorted(subjects(a)) == sorted(f"Message {n}" for n in (1, 2, 4, 5, 6, 8))
    assert sorted(subjects(b)) == ["Message 3", "Message 7"]
    assert [m.sent_using for m in messages] == ["rr"] * 8


def test_round_robin_state_is_shared_across_lookups_of_the_alias() -> None:
    mailpost.configure(
        MAILERS={
            "a": LOCMEM,
            "b": LOCMEM,
            "rr-shared": {"BACKEND": ROUND_ROBIN, "OPTIONS": {"mailers": {"a": 1, "b": 1}}},
        }
    )
    used = []
    for n in range(6):
        msg = make_message(n)
        mailpost.mailers["rr-shared"].send_messages([msg])  # a new backend every time
        assert msg.delivery is not None
        used.append(msg.delivery.mailer)
    assert used == ["a", "b", "a", "b", "a", "b"]


def test_round_robin_dict_weights_equal_list_weights() -> None:
    mailpost.configure(
        MAILERS={
            "a": LOCMEM,
            "b": LOCMEM,
            "by-dict": {"BACKEND": ROUND_ROBIN, "OPTIONS": {"mailers": {"a": 1, "b": 2}}},
            "by-list": {
                "BACKEND": ROUND_ROBIN,
                "OPTIONS": {"mailers": ["a", "b"], "weights": [1, 2]},
            },
        }
    )
    picks = {}
    for alias in ("by-dict", "by-list"):
        messages = [make_message(n) for n in range(6)]
        mailpost.mailers[alias].send_messages(messages)
        picks[alias] = [m.delivery.mailer for m in messages if m.delivery]
    assert picks["by-dict"] == picks["by-list"] == ["b", "a", "b", "b", "a", "b"]


def test_round_robin_falls_over_when_its_pick_is_down(
    make_smtp_server: MakeServer, closed_port: int
) -> None:
    b = make_smtp_server()
    configure_round_robin(closed_port, b.port)
    messages = [make_message(n) for n in range(1, 5)]
    assert mailpost.mailers["rr"].send_messages(messages) == 4
    assert sorted(subjects(b)) == ["Message 1", "Message 2", "Message 3", "Message 4"]


def test_round_robin_weight_zero_is_only_a_fallback(
    make_smtp_server: MakeServer, closed_port: int
) -> None:
    spare = make_smtp_server()
    mailpost.configure(
        MAILERS={
            "main": smtp(closed_port),
            "spare": smtp(spare.port),
            "rr": {"BACKEND": ROUND_ROBIN, "OPTIONS": {"mailers": {"main": 1, "spare": 0}}},
            "rr-up": {"BACKEND": ROUND_ROBIN, "OPTIONS": {"mailers": {"spare": 0, "a": 1}}},
            "a": LOCMEM,
        }
    )
    assert mailpost.mailers["rr"].send_messages([make_message(1), make_message(2)]) == 2
    assert subjects(spare) == ["Message 1", "Message 2"]
    messages = [make_message(3), make_message(4)]
    mailpost.mailers["rr-up"].send_messages(messages)
    assert [m.delivery.mailer for m in messages if m.delivery] == ["a", "a"]


def test_round_robin_async_spreads_and_sends_in_parallel(make_smtp_server: MakeServer) -> None:
    a = make_smtp_server()
    b = make_smtp_server()
    configure_round_robin(a.port, b.port)
    messages = [make_message(n) for n in range(1, 7)]
    assert asyncio.run(mailpost.mailers["rr"].asend_messages(messages)) == 6
    assert len(a.messages) == 3
    assert len(b.messages) == 3


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, r"MAILERS\['fo'\]: OPTIONS 'mailers' is required"),
        ({"mailers": []}, r"MAILERS\['fo'\]: OPTIONS 'mailers' is empty"),
        ({"mailers": "a"}, r"MAILERS\['fo'\]: OPTIONS 'mailers' must be a list"),
        ({"mailers": ["a", "a"]}, r"names 'a' more than once"),
        ({"mailers": ["a", "nope"]}, r"MAILERS\['fo'\]: OPTIONS 'mailers' names 'nope', which"),
        ({"mailers": ["a", "fo"]}, r"names 'fo', this mailer itself"),
        ({"mailers": ["a"], "retries": 3}, r"MAILERS\['fo'\]: Unknown options 'retries'\."),
    ],
)
def test_failover_configuration_errors_name_the_alias_and_option(
    options: dict[str, Any], match: str
) -> None:
    mailpost.configure(MAILERS={"a": LOCMEM, "fo": {"BACKEND": FAILOVER, "OPTIONS": options}})
    with pytest.raises(InvalidMailer, match=match) as info:
        mailpost.mailers["fo"]
    assert info.value.alias == "fo"


def test_a_cycle_through_another_composite_is_refused() -> None:
    mailpost.configure(
        MAILERS={
            "a": LOCMEM,
            "fo": {"BACKEND": FAILOVER, "OPTIONS": {"mailers": ["a", "fo2"]}},
            "fo2": {"BACKEND": FAILOVER, "OPTIONS": {"mailers": ["fo"]}},
        }
    )
    with pytest.raises(InvalidMailer, match=r"MAILERS\['fo'\].*cycle \('fo' -> 'fo2' -> 'fo'\)"):
        mailpost.mailers["fo"]


def test_a_cycle_through_a_spool_is_refused(tmp_path: Path) -> None:
    mailpost.configure(
        MAILERS={
            "fo": {"BACKEND": FAILOVER, "OPTIONS": {"mailers": ["queue"]}},
            "queue": spool_entry(str(tmp_path / "s.sqlite3"), "fo"),
        }
    )
    with pytest.raises(InvalidMailer, match=r"cycle \('fo' -> 'queue' -> 'fo'\)"):
        mailpost.mailers["fo"]


def test_an_invalid_inner_mailer_is_reported_with_both_aliases() -> None:
    mailpost.configure(
        MAILERS={
            "bad": {"BACKEND": "mailpost.backends.locmem.EmailBackend", "OPTIONS": {"x": 1}},
            "fo": {"BACKEND": FAILOVER, "OPTIONS": {"mailers": ["bad"]}},
        }
    )
    with pytest.raises(InvalidMailer, match=r"MAILERS\['fo'\].*'bad' cannot be built.*'x'"):
        mailpost.mailers["fo"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"mailers": ["a", "b"], "weights": [1]}, r"'weights' has 1 weight\(s\) for 2"),
        ({"mailers": ["a", "b"], "weights": [1, -1]}, r"weight -1 is not an integer >= 0"),
        ({"mailers": ["a", "b"], "weights": [0, 0]}, r"at least one weight must be positive"),
        ({"mailers": {"a": 1, "b": "x"}}, r"OPTIONS 'mailers': weight 'x'"),
        ({"mailers": {"a": 1}, "weights": [1]}, r"'weights' cannot be given"),
    ],
)
def test_round_robin_weight_errors_name_the_option(options: dict[str, Any], match: str) -> None:
    mailpost.configure(
        MAILERS={"a": LOCMEM, "b": LOCMEM, "rr": {"BACKEND": ROUND_ROBIN, "OPTIONS": options}}
    )
    with pytest.raises(InvalidMailer, match=r"MAILERS\['rr'\]: .*" + match):
        mailpost.mailers["rr"]


# -- URLs -----------------------------------------------------------------------------------


def test_failover_and_round_robin_urls() -> None:
    assert parse_mailer_url("failover://primary,backup", alias="x") == {
        "BACKEND": FAILOVER,
        "OPTIONS": {"mailers": ["primary", "backup"]},
    }
    assert parse_mailer_url("round-robin://A, b?weights=3,1", alias="x") == {
        "BACKEND": ROUND_ROBIN,
        "OPTIONS": {"mailers": ["A", "b"], "weights": [3, 1]},
    }


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("failover://", r"needs a comma-separated list of mailer aliases"),
        ("failover://a,,b", r"needs a comma-separated list"),
        ("failover://a/b", r"needs a comma-separated list"),
        ("round-robin://a,b?weights=3,x", r"'weights' must be comma-separated integers"),
        ("failover://a?weights=1", r"unknown option 'weights'"),
    ],
)
def test_bad_composite_urls_name_the_problem(url: str, match: str) -> None:
    with pytest.raises(InvalidMailer, match=r"MAILERS\['x'\]: " + ".*" + match):
        parse_mailer_url(url, alias="x")


def test_url_configured_failover_sends(make_smtp_server: MakeServer, closed_port: int) -> None:
    backup = make_smtp_server()
    mailpost.configure(
        MAILERS={
            "primary": smtp(closed_port),
            "backup": smtp(backup.port),
            "default": "failover://primary,backup",
        }
    )
    assert mailpost.send_mail("Message 1", "body", "from@example.com", ["to@example.com"]) == 1
    assert subjects(backup) == ["Message 1"]


# -- under the spool ------------------------------------------------------------------------


def configure_spooled_failover(path: str, primary: int, backup: int) -> None:
    mailpost.configure(
        MAILERS={
            "primary": smtp(primary),
            "backup": smtp(backup),
            "fo": {"BACKEND": FAILOVER, "OPTIONS": {"mailers": ["primary", "backup"]}},
            "spool": spool_entry(path, "fo", retry={"first_delay": 60, "jitter": 0}),
        }
    )


def test_spool_delivers_through_backup_when_primary_is_down(
    tmp_path: Path, make_smtp_server: MakeServer, closed_port: int
) -> None:
    backup = make_smtp_server()
    configure_spooled_failover(str(tmp_path / "s.sqlite3"), closed_port, backup.port)
    msg = make_message(1)
    mailpost.mailers["spool"].send_messages([msg])
    spool = Spool.from_mailer("spool")
    assert spool.worker().run(until_idle=True) == 1
    assert subjects(backup) == ["Message 1"]
    record = spool.get(msg.spool_id)  # type: ignore[attr-defined]
    assert record is not None
    assert record.state == "sent"
    assert parse(backup.messages[0].data)["Message-ID"] == record.message_id


def test_spool_keeps_the_message_queued_when_every_mailer_is_down(
    tmp_path: Path, closed_port: int
) -> None:
    from smtpd_harness import unused_port

    configure_spooled_failover(str(tmp_path / "s.sqlite3"), closed_port, unused_port())
    msg = make_message(1)
    mailpost.mailers["spool"].send_messages([msg])
    spool = Spool.from_mailer("spool")
    assert spool.worker().run(until_idle=True) == 1
    record = spool.get(msg.spool_id)  # type: ignore[attr-defined]
    assert record is not None
    assert record.state == "queued"
    assert record.attempts == 1
    assert record.next_attempt_at > record.queued_at


def test_spool_retries_only_the_recipient_both_mailers_deferred(
    tmp_path: Path, make_smtp_server: MakeServer
) -> None:
    deferred = Faults(refuse={"b@example.com": "452 4.2.2 Mailbox full"})
    primary = make_smtp_server(faults=deferred)
    backup = make_smtp_server(faults=Faults(refuse=dict(deferred.refuse)))
    configure_spooled_failover(str(tmp_path / "s.sqlite3"), primary.port, backup.port)
    msg = make_message(1, to=["a@example.com", "b@example.com"])
    mailpost.mailers["spool"].send_messages([msg])
    spool = Spool.from_mailer("spool")
    spool.worker().run(until_idle=True)
    record = spool.get(msg.spool_id)  # type: ignore[attr-defined]
    assert record is not None
    assert record.state == "queued"
    assert record.pending == ["b@example.com"]
    assert [m.rcpt_tos for m in primary.messages] == [["a@example.com"]]
    assert backup.messages == []


def test_spool_dead_letters_a_permanent_refusal_without_trying_backup(
    tmp_path: Path, make_smtp_server: MakeServer
) -> None:
    primary = make_smtp_server(faults=Faults(refuse={"rcpt-1@example.com": "550 5.1.1 Unknown"}))
    backup = make_smtp_server()
    configure_spooled_failover(str(tmp_path / "s.sqlite3"), primary.port, backup.port)
    msg = make_message(1)
    mailpost.mailers["spool"].send_messages([msg])
    spool = Spool.from_mailer("spool")
    spool.worker().run(until_idle=True)
    record = spool.get(msg.spool_id)  # type: ignore[attr-defined]
    assert record is not None
    assert record.state == "dead"
    assert record.attempts == 1
    assert backup.sessions == 0


# -- the shared backend contract, over in-memory inner mailers ------------------------------


class CompositeContract(BackendContract):
    """The contract, with ``delivery.mailer`` naming the inner mailer that took the message
    (``sent_using`` still names the composite, "contract")."""

    backend_path = FAILOVER
    options: dict[str, Any] = {}
    result_mailers = ("one", "two")

    @pytest.fixture
    def make_backend(self) -> Callable[..., Any]:
        def make(**options: Any) -> Any:
            entry = {"BACKEND": self.backend_path, "OPTIONS": {**self.options, **options}}
            mailpost.configure(MAILERS={"one": LOCMEM, "two": LOCMEM, "contract": entry})
            return mailpost.mailers["contract"]

        return make

    @pytest.fixture
    def delivered(self) -> Callable[[], list[Delivered]]:
        return outbox_delivered


class TestFailoverContract(CompositeContract):
    backend_path = FAILOVER
    options = {"mailers": ["one", "two"]}


class TestRoundRobinContract(CompositeContract):
    """One call's messages go to each mailer as one batch, so what the two mailers deliver
    is compared in message order, not in the order the two mailers happened to run."""

    backend_path = ROUND_ROBIN
    options = {"mailers": {"one": 2, "two": 1}}

    @pytest.fixture
    def delivered(self) -> Callable[[], list[Delivered]]:
        def in_message_order() -> list[Delivered]:
            return sorted(outbox_delivered(), key=lambda d: str(parse(d.data)["Subject"]))

        return in_message_order


# -- a foreign (Django-style) inner backend ---------------------------------------------------


class ForeignBackend:
    """A backend in Django's style: no base class, no delivery records, only a count."""

    sent: list[str] = []

    def __init__(self, fail_silently: bool = False, down: bool = False) -> None:
        self.down = down

    def open(self) -> None:
        if self.down:
            raise ConnectionRefusedError("down")

    def close(self) -> None:
        pass

    def send_messages(self, messages: list[EmailMessage]) -> int:
        if self.down:
            raise ConnectionRefusedError("down")
        ForeignBackend.sent.extend(str(m.subject) for m in messages)
        return len(messages)


def test_foreign_inner_backends_are_judged_by_count_and_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ForeignBackend, "sent", [])
    foreign = f"{__name__}.ForeignBackend"
    mailpost.configure(
        MAILERS={
            "down": {"BACKEND": foreign, "OPTIONS": {"down": True}},
            "up": {"BACKEND": foreign},
            "fo": {"BACKEND": FAILOVER, "OPTIONS": {"mailers": ["down", "up"]}},
        }
    )
    messages = [make_message(1), make_message(2)]
    assert mailpost.mailers["fo"].send_messages(messages) == 2
    assert ForeignBackend.sent == ["Message 1", "Message 2"]
    for msg in messages:
        assert msg.delivery is not None
        assert msg.delivery.ok
        assert msg.delivery.mailer == "up"
    with mailpost.mailers["fo"] as backend:  # open() of "down" fails: straight to "up"
        assert backend.send_messages([make_message(3)]) == 1
    assert ForeignBackend.sent[-1] == "Message 3"


def configure_busy_primary_and_a_backup_refusing_our_login(
    make_smtp_server: MakeServer, auth_smtp_server: SMTPServer, **more: Any
) -> None:
    """``fo``: a primary that defers rcpt-1 (450), then a backup that answers our login with
    535, a problem of that mailer and not of the message."""
    from smtp_fixtures import mailer_entry

    primary = make_smtp_server(faults=Faults(refuse={"rcpt-1@example.com": "450 4.2.1 Busy"}))
    login = mailer_entry(auth_smtp_server, use_tls=True, username="alice", password="wrong")
    mailpost.configure(
        MAILERS={
            "primary": smtp(primary.port),
            "backup": login,
            "fo": {"BACKEND": FAILOVER, "OPTIONS": {"mailers": ["primary", "backup"]}},
            **more,
        }
    )


def test_spool_keeps_a_message_deferred_by_primary_when_backup_rejects_our_login(
    tmp_path: Path, make_smtp_server: MakeServer, auth_smtp_server: SMTPServer
) -> None:
    spool_mailer = spool_entry(str(tmp_path / "s.sqlite3"), "fo", retry={"jitter": 0})
    configure_busy_primary_and_a_backup_refusing_our_login(
        make_smtp_server, auth_smtp_server, spool=spool_mailer
    )
    msg = make_message(1)
    mailpost.mailers["spool"].send_messages([msg])
    spool = Spool.from_mailer("spool")
    spool.worker().run(until_idle=True)
    record = spool.get(msg.spool_id)  # type: ignore[attr-defined]
    assert record is not None
    assert record.state == "queued"
    assert record.pending == ["rcpt-1@example.com"]


def test_a_backup_that_rejects_our_login_leaves_the_message_retryable(
    make_smtp_server: MakeServer, auth_smtp_server: SMTPServer
) -> None:
    configure_busy_primary_and_a_backup_refusing_our_login(make_smtp_server, auth_smtp_server)
    msg = make_message(1)
    with pytest.raises(DeliveryError, match="535"):
        mailpost.mailers["fo"].send_messages([msg])
    assert msg.delivery is not None
    assert msg.delivery.retryable
    assert msg.delivery.error_code is None
    [status] = msg.delivery.recipients
    assert status.status == "unattempted"
    assert status.retryable


def test_round_robin_falls_over_to_the_following_mailers_wrapping_around() -> None:
    mailpost.configure(
        MAILERS={
            "a": LOCMEM,
            "b": LOCMEM,
            "c": LOCMEM,
            "rr": {"BACKEND": ROUND_ROBIN, "OPTIONS": {"mailers": ["a", "b", "c"]}},
        }
    )
    assert mailpost.mailers["rr"].routes(3) == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]


def test_composites_nest_and_report_the_innermost_mailer(closed_port: int) -> None:
    mailpost.configure(
        MAILERS={
            "down": smtp(closed_port),
            "a": LOCMEM,
            "b": LOCMEM,
            "spread": {"BACKEND": ROUND_ROBIN, "OPTIONS": {"mailers": ["a", "b"]}},
            "default": {"BACKEND": FAILOVER, "OPTIONS": {"mailers": ["down", "spread"]}},
        }
    )
    messages = [make_message(1), make_message(2)]
    assert mailpost.mailers.default.send_messages(messages) == 2
    assert [m.delivery.mailer for m in messages if m.delivery] == ["a", "b"]
    assert [m.sent_using for m in messages] == ["default", "default"]


def test_failover_to_an_http_provider_sends_only_the_recipients_still_pending(
    make_smtp_server: MakeServer,
) -> None:
    from http_fakes import API_KEY, start_fake

    primary = make_smtp_server(faults=Faults(refuse={"b@example.com": "452 4.2.2 Mailbox full"}))
    fake, server = start_fake("resend")
    try:
        mailpost.configure(
            MAILERS={
                "primary": smtp(primary.port),
                "backup": {
                    "BACKEND": "mailpost.backends.resend.EmailBackend",
                    "OPTIONS": {"api_key": API_KEY, "base_url": fake.url},
                },
                "fo": {
                    "BACKEND": "mailpost.backends.failover.EmailBackend",
                    "OPTIONS": {"mailers": ["primary", "backup"]},
                },
            }
        )
        msg = make_message(1, to=["a@example.com", "b@example.com"])
        assert mailpost.mailers["fo"].send_messages([msg]) == 1
        [first] = primary.messages
        assert first.rcpt_tos == ["a@example.com"]
        [posted] = fake.accepted
        assert posted.recipients == ["b@example.com"]  # never re-sent to a@ through the API
        assert msg.delivery is not None
        assert sorted(msg.delivery.accepted) == ["a@example.com", "b@example.com"]
    finally:
        server.shutdown()
        server.server_close()
