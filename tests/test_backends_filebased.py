"""The file backend: one .log file per backend instance in file_path, appended to each
time that instance is opened."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mailpost
from backend_contract import BackendContract, Delivered, make_message, parse
from mailpost.backends.console import SEPARATOR
from mailpost.backends.filebased import EmailBackend, FileBackend


def configure_file(file_path: Any, alias: str = "contract", **options: Any) -> None:
    entry = {
        "BACKEND": "mailpost.backends.filebased.EmailBackend",
        "OPTIONS": {"file_path": file_path, **options},
    }
    mailpost.configure(MAILERS={alias: entry})


def messages_in(directory: Path) -> list[bytes]:
    """Every message written to the directory, file by file in creation order."""
    out: list[bytes] = []
    for path in sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime_ns):
        # Each message is its bytes, a blank line, the separator (Django's layout).
        chunks = path.read_bytes().split(b"\n" + SEPARATOR.encode() + b"\n")
        assert chunks[-1] == b""
        out.extend(chunks[:-1])
    return out


class TestFileContract(BackendContract):
    observes_envelope = False

    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> Callable[..., Any]:
        def make(**options: Any) -> Any:
            configure_file(tmp_path / "mail", **options)
            return mailpost.mailers["contract"]

        return make

    @pytest.fixture
    def delivered(self, tmp_path: Path) -> Callable[[], list[Delivered]]:
        directory = tmp_path / "mail"
        return lambda: [Delivered("", [], data) for data in messages_in(directory)]


def test_emailbackend_is_the_file_backend_class() -> None:
    assert EmailBackend is FileBackend


def test_file_path_is_required(tmp_path: Path) -> None:
    mailpost.configure(MAILERS={"files": {"BACKEND": "mailpost.backends.filebased.EmailBackend"}})
    with pytest.raises(mailpost.InvalidMailer, match=r"^MAILERS\['files'\]: .*'file_path'"):
        mailpost.mailers["files"]


def test_missing_directory_is_created_at_lookup(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    configure_file(str(target))
    mailpost.mailers["contract"]
    assert target.is_dir()


def test_file_path_accepts_a_pathlib_path(tmp_path: Path) -> None:
    configure_file(tmp_path)
    assert mailpost.mailers["contract"].send_messages([make_message(1)]) == 1
    assert len(list(tmp_path.glob("*.log"))) == 1


def test_file_path_that_is_a_regular_file_is_rejected_naming_alias_and_path(
    tmp_path: Path,
) -> None:
    regular = tmp_path / "not-a-dir"
    regular.write_text("x")
    configure_file(regular, alias="files")
    with pytest.raises(mailpost.InvalidMailer) as info:
        mailpost.mailers["files"]
    assert str(info.value).startswith("MAILERS['files']: ")
    assert str(regular) in str(info.value)
    assert info.value.alias == "files"


@pytest.mark.parametrize("value", [42, ["/tmp/mail"], 1.5, True])
def test_file_path_of_wrong_type_is_a_type_error_as_in_django(value: Any) -> None:
    configure_file(value)
    with pytest.raises(TypeError) as info:
        mailpost.mailers["contract"]
    assert not isinstance(info.value, mailpost.InvalidMailer)
    assert str(info.value) == (
        f"expected str, bytes or os.PathLike object, not {type(value).__name__} "
        "(MAILERS['contract']: 'file_path' is the directory to write message files to, a str "
        "or pathlib.Path)"
    )


def test_file_path_given_as_bytes_is_decoded(tmp_path: Path) -> None:
    backend = FileBackend(file_path=bytes(tmp_path / "mail"))
    assert backend.file_path == str(tmp_path / "mail")
    assert (
        backend.send_messages([mailpost.EmailMessage("S", "B", "f@example.com", ["t@example.com"])])
        == 1
    )
    assert len(list((tmp_path / "mail").iterdir())) == 1


def test_directory_problems_are_not_silenced_by_fail_silently(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("x")
    configure_file(regular, fail_silently=True)
    with pytest.raises(mailpost.InvalidMailer, match="not a directory"):
        mailpost.mailers["contract"]


def test_directory_removed_after_lookup_is_recreated_on_open(tmp_path: Path) -> None:
    target = tmp_path / "mail"
    configure_file(target)
    backend = mailpost.mailers["contract"]
    target.rmdir()
    assert backend.send_messages([make_message(1)]) == 1
    assert len(messages_in(target)) == 1


def test_each_lookup_writes_a_new_file_and_one_instance_appends_to_its_own(
    tmp_path: Path,
) -> None:
    configure_file(tmp_path)
    backend = mailpost.mailers["contract"]
    backend.send_messages([make_message(1)])
    backend.send_messages([make_message(2)])
    assert len(list(tmp_path.glob("*.log"))) == 1
    mailpost.mailers["contract"].send_messages([make_message(3)])
    files = list(tmp_path.glob("*.log"))
    assert len({f.name for f in files}) == 2
    assert [parse(d)["Subject"] for d in messages_in(tmp_path)] == [
        "Message 1",
        "Message 2",
        "Message 3",
    ]


def test_close_then_open_appends_to_the_same_file(tmp_path: Path) -> None:
    configure_file(tmp_path)
    backend = mailpost.mailers["contract"]
    with backend:
        backend.send_messages([make_message(1)])
        first = backend.current_file
    with backend:
        backend.send_messages([make_message(2)])
        assert backend.current_file == first
    assert [p.name for p in tmp_path.glob("*.log")] == [first.name]
    assert [parse(d)["Subject"] for d in messages_in(tmp_path)] == ["Message 1", "Message 2"]


def test_message_is_followed_by_a_blank_line_and_the_separator(tmp_path: Path) -> None:
    configure_file(tmp_path)
    mailpost.mailers["contract"].send_messages([make_message(1)])
    [path] = tmp_path.glob("*.log")
    assert path.read_bytes().endswith(b"\n\n" + SEPARATOR.encode() + b"\n")
    assert not path.read_bytes().endswith(b"\n\n\n" + SEPARATOR.encode() + b"\n")


def test_file_path_is_an_absolute_str(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = FileBackend(file_path=Path("a") / ".." / "mail")
    assert backend.file_path == str(tmp_path / "mail")
    assert type(backend.file_path) is str


def test_direct_construction_reads_legacy_email_file_path(tmp_path: Path) -> None:
    mailpost.configure(EMAIL_FILE_PATH=str(tmp_path / "legacy"))
    assert FileBackend().file_path == str(tmp_path / "legacy")


def test_direct_construction_without_any_path_names_the_setting() -> None:
    mailpost.configure()
    with pytest.raises(mailpost.ImproperlyConfigured, match=r"^The EMAIL_FILE_PATH setting must"):
        FileBackend()


def test_one_open_writes_one_file(tmp_path: Path) -> None:
    configure_file(tmp_path)
    with mailpost.mailers["contract"] as backend:
        backend.send_messages([make_message(1)])
        backend.send_messages([make_message(2), make_message(3)])
        current = backend.current_file
    assert [p.name for p in tmp_path.glob("*.log")] == [current.name]
    subjects = [parse(d)["Subject"] for d in messages_in(tmp_path)]
    assert subjects == ["Message 1", "Message 2", "Message 3"]


def test_file_holds_the_exact_message_bytes_with_unix_newlines(tmp_path: Path) -> None:
    configure_file(tmp_path)
    msg = make_message(1)
    mailpost.mailers["contract"].send_messages([msg])
    [data] = messages_in(tmp_path)
    assert b"\r\n" not in data
    assert parse(data)["Message-ID"] == msg.delivery.message_id


def test_open_twice_keeps_the_same_file(tmp_path: Path) -> None:
    configure_file(tmp_path)
    backend = mailpost.mailers["contract"]
    assert backend.open() is True
    first = backend.current_file
    assert backend.open() is False
    assert backend.current_file == first
    backend.close()
    assert backend.current_file is None
