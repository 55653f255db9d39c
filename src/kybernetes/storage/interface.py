"""The storage protocol: a revisioned key-value store with etcd's semantics.

Backends know nothing about Kubernetes objects: keys are strings, values are bytes.
There is one cluster-wide revision; every successful write returns the new revision,
which becomes the written key's `mod_revision`. Writes are compare-and-swap on that
revision. A watch delivers, in revision order, every change under a prefix after a given
revision, or fails with `CompactedError` when that history has been compacted away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True)
class Event:
    """One change. `type` is "PUT" or "DELETE"; `kv.mod_revision` is the change's revision.

    For a DELETE, `kv.value` is the last value before deletion and `kv.mod_revision` the
    revision of the delete; `prev` is the previous KeyValue for both types when known.
    """

    type: str
    kv: KeyValue
    prev: KeyValue | None = None


class StorageError(Exception):
    pass


class KeyExistsError(StorageError):
    def __init__(self, key: str):
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StorageError):
    def __init__(self, key: str):
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionMismatchError(StorageError):
    """Compare-and-swap failed; `current` is the key's value now (None if gone)."""

    def __init__(self, key: str, current: KeyValue | None):
        super().__init__(f"revision mismatch: {key}")
        self.key = key
        self.current = current


class CompactedError(StorageError):
    def __init__(self, requested: int, compacted: int):
        super().__init__(f"required revision {requested} has been compacted (compacted revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StorageError):
    def __init__(self, requested: int, current: int):
        super().__init__(f"required revision {requested} is a future revision (current {current})")
        self.requested = requested
        self.current = current


class Watch(Protocol):
    """An open watch: iterate for batches of events; `close()` ends it."""

    def __aiter__(self) -> AsyncIterator[list[Event]]: ...

    def close(self) -> None: ...


class Storage(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> tuple[list[KeyValue], int]:
        """Live keys under prefix in key order, at `revision` (0 = now); returns (kvs, revision read at)."""

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, value: bytes) -> int:
        """Create key; raises KeyExistsError. Returns the new revision."""

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace key if its mod_revision equals expected_revision (0 = any).

        Raises KeyNotFoundError or RevisionMismatchError.
        """

    async def delete(self, key: str, expected_revision: int = 0) -> tuple[int, KeyValue]:
        """Delete key; returns (revision, value deleted). Raises KeyNotFoundError or RevisionMismatchError."""

    def watch(self, prefix: str, from_revision: int) -> Watch:
        """Changes under prefix with revision > from_revision. Raises CompactedError if too old."""

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None:
        """Forget history at or below `revision` (latest values of live keys are kept)."""

    async def compacted_revision(self) -> int: ...

    async def db_size(self) -> int:
        """Bytes the backend occupies (database file plus write-ahead log)."""

    async def close(self) -> None: ...
