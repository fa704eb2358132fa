"""Where the preview finds messages: the capture store, a file-backend directory, a spool,
and a registry of code-defined previews. Each source lists entries newest first and loads
one message's bytes by key; the UI merges them.

Keys are URL-safe (``[A-Za-z0-9._-]``) so a message's id in the UI is ``<source>-<key>``.
Directory and spool sources only read.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailpost._preview_store import CaptureStore
from mailpost.preview.parse import Summary, split_log, summarize

if TYPE_CHECKING:
    from mailpost.message import EmailMessage

__all__ = [
    "CaptureSource",
    "DirectorySource",
    "Entry",
    "PreviewsSource",
    "Source",
    "SpoolSource",
    "preview",
    "registered_previews",
]

_SAFE_NAME = re.compile(r"\A[A-Za-z0-9._-]+\Z")


@dataclass(frozen=True)
class Entry:
    """One message in a source's listing."""

    key: str
    received_at: float
    origin: str
    summary: Summary


class Source(ABC):
    """A read-mostly collection of messages for the preview."""

    #: short label shown in the UI and used as the id prefix (``[a-z]+``)
    name: str = "source"
    limit: int = 500

    def __init__(self) -> None:
        self._summaries: dict[str, Summary] = {}
        self._cache_lock = threading.Lock()

    @abstractmethod
    def version(self) -> str:
        """A token that changes when the listing changes."""

    @abstractmethod
    def entries(self) -> list[Entry]:
        """The newest messages (at most :attr:`limit`), newest first."""

    @abstractmethod
    def load(self, key: str) -> bytes | None:
        """The bytes of one message, or None if the key is unknown."""

    def summary(self, key: str, load: Callable[[], bytes | None]) -> Summary | None:
        """A cached summary (stored messages never change)."""
        with self._cache_lock:
            cached = self._summaries.get(key)
        if cached is not None:
            return cached
        data = load()
        if data is None:
            return None
        result = summarize(data)
        with self._cache_lock:
            if len(self._summaries) > 4 * self.limit:
                self._summaries.clear()
            self._summaries[key] = result
        return result


class CaptureSource(Source):
    """The messages of a :class:`~mailpost.preview.CaptureStore`."""

    name = "capture"

    def __init__(self, store: CaptureStore | str | os.PathLike[str]) -> None:
        super().__init__()
        self.store = store if isinstance(store, CaptureStore) else CaptureStore(store)

    def __repr__(self) -> str:
        return f"<CaptureSource {str(self.store.path)!r}>"

    def version(self) -> str:
        return self.store.version()

    def entries(self) -> list[Entry]:
        index = self.store.index(limit=self.limit)
        with self._cache_lock:
            missing = [i for i, _, _ in index if str(i) not in self._summaries]
        loaded = {m.id: m.data for m in self.store.get_many(missing)} if missing else {}
        result = []
        for message_id, received_at, origin in index:
            key = str(message_id)
            if message_id in loaded:
                summary = self.summary(key, functools.partial(_same, loaded[message_id]))
                if summary is not None:
                    result.append(Entry(key, received_at, origin, summary))
                continue
            summary = self.summary(key, functools.partial(self.load, key))
            if summary is not None:
                result.append(Entry(key, received_at, origin, summary))
        return result

    def load(self, key: str) -> bytes | None:
        if not key.isdigit():
            return None
        message = self.store.get(int(key))
        return None if message is None else message.data


class DirectorySource(Source):
    """The files the file backend writes (``*.log``, several messages each, separated by a
    line of 79 dashes) and any ``*.eml`` files, in one directory. File names must be made
    of ``[A-Za-z0-9._-]``; others are not listed."""

    name = "file"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path).expanduser().absolute()
        self._files: dict[str, tuple[tuple[int, int], list[bytes]]] = {}

    def __repr__(self) -> str:
        return f"<DirectorySource {str(self.path)!r}>"

    def _stats(self) -> list[tuple[str, os.stat_result]]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        result = []
        for name in names:
            if not name.endswith((".log", ".eml")) or not _SAFE_NAME.match(name):
                continue
            try:
                result.append((name, (self.path / name).stat()))
            except FileNotFoundError:
                continue
        return result

    def version(self) -> str:
        stats = sorted((n, s.st_mtime_ns, s.st_size) for n, s in self._stats())
        return str(hash(tuple(stats)))

    def _messages(self, name: str, stat: os.stat_result) -> list[bytes]:
        mark = (stat.st_mtime_ns, stat.st_size)
        cached = self._files.get(name)
        if cached is not None and cached[0] == mark:
            return cached[1]
        try:
            data = (self.path / name).read_bytes()
        except FileNotFoundError:
            return []
        messages = split_log(data)
        self._files[name] = (mark, messages)
        # a file that grew keeps its earlier messages: drop only summaries that may differ
        with self._cache_lock:
            for key in [k for k in self._summaries if k.startswith(f"{name}.")]:
                index = int(key.rsplit(".", 1)[1])
                if index >= len(messages) - 1:
                    del self._summaries[key]
        return messages

    def entries(self) -> list[Entry]:
        result = []
        for name, stat in self._stats():
            for index, data in enumerate(self._messages(name, stat)):
                key = f"{name}.{index}"
                summary = self.summary(key, functools.partial(_same, data))
                assert summary is not None
                result.append(Entry(key, stat.st_mtime + index * 1e-6, "file", summary))
        result.sort(key=lambda e: (e.received_at, e.key), reverse=True)
        return result[: self.limit]

    def load(self, key: str) -> bytes | None:
        name, _, index = key.rpartition(".")
        if not _SAFE_NAME.match(name) or not index.isdigit() or not name.endswith((".log", ".eml")):
            return None
        try:
            stat = (self.path / name).stat()
        except FileNotFoundError:
            return None
        messages = self._messages(name, stat)
        position = int(index)
        return messages[position] if position < len(messages) else None


class SpoolSource(Source):
    """The messages in a spool (any state), read only: ``origin`` shows the state."""

    name = "spool"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = str(path)
        self._spool: Any = None

    def __repr__(self) -> str:
        return f"<SpoolSource {self.path!r}>"

    def _open(self) -> Any:
        if self._spool is None:
            from mailpost.spool.api import Spool

            if "://" not in self.path and not Path(self.path).exists():
                raise FileNotFoundError(f"no spool at {self.path!r}")
            self._spool = Spool.open(self.path)
        return self._spool

    def _records(self) -> list[Any]:
        spool = self._open()
        total = int(spool.stats().get("total", 0))
        offset = max(0, total - self.limit)
        return list(reversed(spool.list(limit=self.limit, offset=offset)))

    def version(self) -> str:
        try:
            records = self._records()
        except FileNotFoundError:
            return "missing"
        return str(hash(tuple((r.id, r.state, r.updated_at) for r in records)))

    def entries(self) -> list[Entry]:
        try:
            records = self._records()
        except FileNotFoundError:
            return []
        result = []
        for record in records:
            key = str(record.id)
            summary = self.summary(key, functools.partial(self.load, key))
            if summary is not None:
                result.append(Entry(key, record.created_at, f"spool:{record.state}", summary))
        return result

    def load(self, key: str) -> bytes | None:
        if not key.isdigit():
            return None
        try:
            record = self._open().get(int(key), with_data=True)
        except FileNotFoundError:
            return None
        return None if record is None or record.data is None else bytes(record.data)


def _same(data: bytes) -> bytes | None:
    return data


# -- code-defined previews (a minimal gallery) ----------------------------------------------

_PREVIEWS: dict[str, Callable[[], EmailMessage]] = {}


def preview(name: str) -> Callable[[Callable[[], EmailMessage]], Callable[[], EmailMessage]]:
    """Register a function returning an :class:`~mailpost.EmailMessage` as the preview
    ``name`` (``[A-Za-z0-9._-]``): ``mailpost preview --previews module`` renders it afresh
    on every view, like Rails' mailer previews."""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"preview name {name!r} must be made of letters, digits, '.', '_', '-'")

    def register(func: Callable[[], EmailMessage]) -> Callable[[], EmailMessage]:
        _PREVIEWS[name] = func
        return func

    return register


def registered_previews() -> dict[str, Callable[[], EmailMessage]]:
    """A copy of the registry: preview name -> function."""
    return dict(_PREVIEWS)


class PreviewsSource(Source):
    """Messages built by registered preview functions, rebuilt on each request."""

    name = "previews"

    def __init__(self, previews: dict[str, Callable[[], EmailMessage]] | None = None) -> None:
        super().__init__()
        self._previews = previews

    def __repr__(self) -> str:
        return f"<PreviewsSource {sorted(self._registry())!r}>"

    def _registry(self) -> dict[str, Callable[[], EmailMessage]]:
        return self._previews if self._previews is not None else _PREVIEWS

    def version(self) -> str:
        return ",".join(sorted(self._registry()))

    def entries(self) -> list[Entry]:
        result = []
        for name in sorted(self._registry()):
            data = self.load(name)
            if data is not None:
                result.append(Entry(name, 0.0, "preview", summarize(data)))
        return result

    def load(self, key: str) -> bytes | None:
        from mailpost.message import serialize

        func = self._registry().get(key)
        return None if func is None else serialize(func())
