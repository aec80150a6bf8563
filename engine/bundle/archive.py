"""Read bundle archives and source directories safely; write OPA-format archives byte for byte.

A bundle's files are a ``Mapping[str, bytes]`` keyed by bundle-relative POSIX
path without a leading slash (``"regate/policy.rego"``, ``"data.json"``,
``".manifest"``). Archives hold those files as ``/<path>`` entries, the way
``opa build`` writes them.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from engine.errors import BundleError

MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FILES = 10_000

MANIFEST = ".manifest"
SIGNATURES = ".signatures.json"
# What `opa build -b DIR` carries into a bundle; other files in a source
# directory (READMEs, decision cases, editor files) never reach the archive.
DATA_FILES = frozenset({"data.json", "data.yaml", "data.yml"})
_ROOT_HIDDEN = frozenset({MANIFEST, SIGNATURES})
# Slack for tar headers and padding, so the decompressed-stream cap only ever
# trips on content, not on the container.
_PER_ENTRY_OVERHEAD = 3 * 512
_STREAM_SLACK = 1024 * 1024


def is_bundle_file(path: str) -> bool:
    """Whether ``path`` is a file OPA loads from a bundle (policy, data, manifest, signatures)."""
    name = PurePosixPath(path).name
    return name.endswith(".rego") or name in DATA_FILES or path in _ROOT_HIDDEN


def bundle_path(name: str, *, what: str = "entry") -> str:
    """Normalise an archive entry name to a bundle path, refusing anything that escapes.

    One leading ``/`` (as OPA writes entries) and leading ``./`` (as ``tar -C
    dir .`` writes them) are dropped; ``..``, empty or ``.`` components,
    backslashes, NUL and absolute paths are refused.

    >>> bundle_path("/regate/policy.rego")
    'regate/policy.rego'
    """
    path = name[1:] if name.startswith("/") else name
    while path.startswith("./"):
        path = path[2:]
    if path.startswith("/"):
        raise BundleError(f"{what} {name!r}: absolute path")
    if "\\" in path or "\x00" in path:
        raise BundleError(f"{what} {name!r}: backslash or NUL in path")
    if not _is_utf8(path):
        raise BundleError(f"{what} {name!r}: path is not UTF-8")
    parts = path.split("/")
    if ".." in parts:
        raise BundleError(f"{what} {name!r}: path escapes the bundle")
    if any(part in ("", ".") for part in parts):
        raise BundleError(f"{what} {name!r}: empty or '.' path component")
    return path


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # surrogate-escaped bytes from a non-UTF-8 tar name
        return False
    return True


class _CappedReader(io.RawIOBase):
    """Counts decompressed bytes and stops a gzip bomb before it fills memory."""

    def __init__(self, inner: BinaryIO, cap: int) -> None:
        self._inner = inner
        self._left = cap

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        data = self._inner.read(min(len(view), self._left + 1))
        if len(data) > self._left:
            raise BundleError("archive is too large when decompressed (possible gzip bomb)")
        self._left -= len(data)
        view[: len(data)] = data
        return len(data)


def read_archive(
    source: str | os.PathLike[str] | bytes,
    *,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_files: int = MAX_FILES,
) -> dict[str, bytes]:
    """Read a bundle ``.tar.gz`` (a path or its bytes) into bundle files.

    Only regular files are accepted; directory entries are skipped; links,
    devices, unsafe paths and duplicate names raise ``BundleError`` naming the
    entry. Sizes are counted while streaming, so a gzip bomb is stopped early.
    """
    if isinstance(source, bytes):
        raw: BinaryIO = io.BytesIO(source)
    else:
        try:
            raw = open(source, "rb")  # noqa: SIM115 - closed in finally
        except OSError as exc:
            raise BundleError(
                f"cannot open bundle archive: {exc.strerror}", file=str(source)
            ) from None
    cap = max_total_bytes + max_files * _PER_ENTRY_OVERHEAD + _STREAM_SLACK
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            stream = io.BufferedReader(_CappedReader(gz, cap))  # type: ignore[arg-type]
            return _read_tar(stream, max_total_bytes, max_file_bytes, max_files)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BundleError(f"not a valid tar.gz bundle: {exc}") from None
    finally:
        raw.close()


def _read_tar(stream: BinaryIO, max_total: int, max_file: int, max_files: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for count, member in enumerate(tar, start=1):
            if count > max_files:
                raise BundleError(f"archive has more than {max_files} entries")
            if member.isdir():
                stripped = member.name.rstrip("/")
                if stripped not in ("", ".", "/"):
                    bundle_path(stripped)
                continue
            if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                raise BundleError(
                    f"entry {member.name!r} is a {_kind(member)}; only regular files are allowed"
                )
            path = bundle_path(member.name)
            if path in files:
                raise BundleError(f"entry {member.name!r}: duplicate file {path!r}")
            if member.size > max_file:
                raise BundleError(f"entry {member.name!r}: file larger than {max_file} bytes")
            total += member.size
            if total > max_total:
                raise BundleError(f"entry {member.name!r}: bundle larger than {max_total} bytes")
            handle = tar.extractfile(member)
            data = handle.read() if handle is not None else b""
            if len(data) != member.size:
                raise BundleError(f"entry {member.name!r}: truncated")
            files[path] = data
    return files


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "FIFO"
    return f"tar entry of type {member.type!r}"


def read_directory(
    path: str | os.PathLike[str],
    *,
    exclude_dirs: Iterable[str] = ("cases",),
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_files: int = MAX_FILES,
) -> dict[str, bytes]:
    """Read the bundle files of a source directory.

    Keeps what ``opa build -b`` carries into a bundle: ``*.rego``,
    ``data.json``/``data.yaml``/``data.yml`` at any depth, and ``.manifest`` and
    ``.signatures.json`` at the root. Hidden files and directories, the
    top-level ``exclude_dirs`` (decision ``cases/`` travel with the source,
    not the bundle) and every other file are skipped. A symbolic link that
    would be read raises ``BundleError``: a bundle is what is in its directory.
    """
    root = Path(path)
    if not root.is_dir():
        raise BundleError("bundle directory not found", file=str(root))
    excluded = frozenset(exclude_dirs)
    files: dict[str, bytes] = {}
    total = 0
    pending = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise BundleError(
                f"cannot list directory: {exc.strerror}", file=str(directory)
            ) from None
        for entry in entries:
            rel = prefix + entry.name
            hidden = entry.name.startswith(".") and rel not in _ROOT_HIDDEN
            if hidden or (not prefix and entry.name in excluded):
                continue
            wanted_dir = entry.is_dir()
            if entry.is_symlink():
                if wanted_dir or is_bundle_file(rel):
                    raise BundleError("symbolic links are not allowed in a bundle", file=entry.path)
                continue
            if wanted_dir:
                pending.append((Path(entry.path), rel + "/"))
                continue
            if not is_bundle_file(rel):
                continue
            if not entry.is_file(follow_symlinks=False):
                raise BundleError("not a regular file", file=entry.path)
            if len(files) >= max_files:
                raise BundleError(f"bundle has more than {max_files} files", file=str(root))
            data = _read_file(entry.path, max_file_bytes)
            total += len(data)
            if total > max_total_bytes:
                raise BundleError(f"bundle larger than {max_total_bytes} bytes", file=entry.path)
            files[bundle_path(rel, what="file")] = data
    return files


def _read_file(path: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise BundleError(f"cannot read file: {exc.strerror}", file=path) from None
    if len(data) > limit:
        raise BundleError(f"file larger than {limit} bytes", file=path)
    return data


def write_archive(files: Mapping[str, bytes]) -> bytes:
    """Write bundle files as an OPA-format ``.tar.gz``; the same files give the same bytes.

    Entries are ``/<path>`` in sorted order, regular files with mode 0644,
    uid/gid 0, no user or group names and mtime 0; the gzip header carries
    mtime 0 and no file name.
    """
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(files):
            if bundle_path(name, what="file") != name:
                raise BundleError(f"file {name!r}: not a bundle-relative path")
            data = files[name]
            info = tarfile.TarInfo("/" + name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
