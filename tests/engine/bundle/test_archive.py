"""Bundle archives: deterministic OPA-format writing, and reading that refuses unsafe input."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.bundle.archive import bundle_path, read_archive, read_directory, write_archive
from engine.errors import BundleError

FILES = {
    ".manifest": b'{"revision": "r1", "roots": ["regate"]}',
    "data.json": b'{"regate": {"limits": {"max_tokens": 10}}}',
    "regate/policy.rego": b"package regate\n\ndecision := {}\n",
    "regate/lib/data.yaml": b"threshold: 0.5\n",
}


def tar_gz(*entries: tarfile.TarInfo | tuple[str, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A .tar.gz built entry by entry, so tests can write what write_archive never would."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb") as gz,
        tarfile.open(fileobj=gz, mode="w", format=fmt) as tar,
    ):
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
                continue
            name, data = entry
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


# -- writing -----------------------------------------------------------------


def test_same_files_give_the_same_bytes_whatever_the_insertion_order() -> None:
    reordered = dict(reversed(list(FILES.items())))
    assert write_archive(FILES) == write_archive(dict(FILES))
    assert write_archive(reordered) == write_archive(FILES)


def test_entries_are_written_the_way_opa_build_names_them() -> None:
    with tarfile.open(fileobj=io.BytesIO(write_archive(FILES)), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["/" + name for name in sorted(FILES)]
    for member in members:
        assert member.type == tarfile.REGTYPE
        assert (member.mode, member.mtime, member.uid, member.gid) == (0o644, 0, 0, 0)
        assert (member.uname, member.gname) == ("", "")


def test_gzip_header_carries_no_time_and_no_file_name() -> None:
    header = write_archive(FILES)[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] == 0, "no FNAME/FEXTRA/FCOMMENT flags"
    assert header[4:8] == b"\x00\x00\x00\x00", "mtime 0"


def test_written_archive_reads_back_to_the_same_files() -> None:
    assert read_archive(write_archive(FILES)) == FILES


def test_long_and_non_ascii_names_round_trip() -> None:
    files = {"a/" + "b" * 150 + "/policy.rego": b"x", "régate/données/data.json": b"{}"}
    assert read_archive(write_archive(files)) == files


@pytest.mark.parametrize("name", ["/data.json", "../x.rego", "a//b.rego", "./a.rego", "a\\b.rego"])
def test_writing_refuses_names_that_are_not_bundle_paths(name: str) -> None:
    with pytest.raises(BundleError, match=r"a\.rego|b\.rego|data\.json|x\.rego"):
        write_archive({name: b""})


# -- reading -----------------------------------------------------------------


def test_reads_from_a_path_as_well_as_bytes(tmp_path: Path) -> None:
    target = tmp_path / "bundle.tar.gz"
    target.write_bytes(write_archive(FILES))
    assert read_archive(target) == read_archive(str(target)) == FILES


def test_leading_slash_and_dot_slash_and_directory_entries_are_normalised() -> None:
    directory = special("./regate/", tarfile.DIRTYPE)
    archive = tar_gz(directory, ("/data.json", b"{}"), ("./regate/p.rego", b"package regate"))
    assert read_archive(archive) == {"data.json": b"{}", "regate/p.rego": b"package regate"}


@pytest.mark.parametrize(
    "name",
    [
        "../evil.rego",
        "regate/../../evil.rego",
        "//etc/passwd",
        "a/./b.rego",
        "a//b.rego",
        "a\\..\\b",
    ],
)
def test_paths_that_escape_the_bundle_are_refused(name: str) -> None:
    with pytest.raises(BundleError) as caught:
        read_archive(tar_gz((name, b"x")))
    assert repr(name) in str(caught.value)


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        (special("regate/p.rego", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (special("regate/p.rego", tarfile.LNKTYPE, "data.json"), "hard link"),
        (special("regate/dev", tarfile.CHRTYPE), "device"),
        (special("regate/fifo", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_links_and_devices_are_refused_by_name(entry: tarfile.TarInfo, kind: str) -> None:
    with pytest.raises(BundleError) as caught:
        read_archive(tar_gz(("data.json", b"{}"), entry))
    assert kind in str(caught.value)
    assert repr(entry.name) in str(caught.value)


def test_duplicate_names_are_refused_even_when_spelled_differently() -> None:
    with pytest.raises(BundleError, match="duplicate"):
        read_archive(tar_gz(("/data.json", b"{}"), ("data.json", b'{"a": 1}')))


def test_a_gzip_bomb_is_stopped_by_the_file_size_limit() -> None:
    bomb = tar_gz(("data.json", bytes(8 * 1024 * 1024)))
    assert len(bomb) < 64 * 1024
    with pytest.raises(BundleError, match=r"'data\.json'.*larger than"):
        read_archive(bomb, max_file_bytes=1024 * 1024)


def test_a_gzip_bomb_is_stopped_by_the_total_size_limit() -> None:
    bomb = tar_gz(*((f"p{i}.rego", bytes(600 * 1024)) for i in range(4)))
    with pytest.raises(BundleError, match=r"'p1\.rego'.*bundle larger than"):
        read_archive(bomb, max_total_bytes=1024 * 1024)


def test_a_bomb_hidden_in_tar_headers_is_stopped_while_streaming() -> None:
    # A 16 MiB PAX header: no entry is large, but the decompressed stream is.
    info = tarfile.TarInfo("data.json")
    info.pax_headers = {"comment": "x" * (16 * 1024 * 1024)}
    bomb = tar_gz(info)
    with pytest.raises(BundleError, match="gzip bomb"):
        read_archive(bomb, max_total_bytes=1024 * 1024, max_files=10)


def test_too_many_entries_are_refused() -> None:
    with pytest.raises(BundleError, match="more than 3 entries"):
        read_archive(tar_gz(*((f"p{i}.rego", b"") for i in range(4))), max_files=3)


@pytest.mark.parametrize(
    "data",
    [b"not gzip at all", gzip.compress(b"not a tar archive" * 40), write_archive(FILES)[:-30]],
    ids=["not-gzip", "not-tar", "truncated"],
)
def test_broken_archives_raise_bundle_error(data: bytes) -> None:
    with pytest.raises(BundleError, match=r"valid tar\.gz|truncated"):
        read_archive(data)


def test_missing_archive_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as caught:
        read_archive(tmp_path / "nope.tar.gz")
    assert caught.value.file == str(tmp_path / "nope.tar.gz")


def test_bundle_path_strips_one_leading_slash_only() -> None:
    assert bundle_path("/regate/p.rego") == "regate/p.rego"
    with pytest.raises(BundleError, match="absolute"):
        bundle_path("//regate/p.rego")


# -- source directories ------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Callable[[dict[str, bytes]], Path]:
    def write(files: dict[str, bytes]) -> Path:
        root = tmp_path / "src"
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root

    return write


def test_directory_keeps_what_opa_build_keeps(source: Callable[[dict[str, bytes]], Path]) -> None:
    skipped = {
        "cases/allow.yaml": b"expect: allow",
        "cases/data.yaml": b"a: 1",
        "cases/extra.rego": b"package cases",
        "README.md": b"# bundle",
        "schemas/request.json": b"{}",
        ".git/config": b"[core]",
        ".hidden.rego": b"package hidden",
        "regate/.manifest": b"{}",
    }
    root = source({**FILES, ".signatures.json": b'{"signatures": []}', **skipped})
    files = read_directory(root)
    assert files == {**FILES, ".signatures.json": b'{"signatures": []}'}


def test_directory_excludes_can_be_changed(source: Callable[[dict[str, bytes]], Path]) -> None:
    root = source({"cases/x.rego": b"package cases", "vendor/y.rego": b"package vendor"})
    assert set(read_directory(root, exclude_dirs=("vendor",))) == {"cases/x.rego"}


def test_directory_symlinks_are_refused(source: Callable[[dict[str, bytes]], Path]) -> None:
    root = source({"regate/policy.rego": b"package regate"})
    os.symlink(root / "regate" / "policy.rego", root / "regate" / "alias.rego")
    with pytest.raises(BundleError, match="symbolic link") as caught:
        read_directory(root)
    assert caught.value.file is not None and caught.value.file.endswith("alias.rego")


def test_directory_file_limits_name_the_file(source: Callable[[dict[str, bytes]], Path]) -> None:
    root = source({"data.json": b"[" + b"0," * 1000 + b"0]"})
    with pytest.raises(BundleError, match="larger than 100 bytes") as caught:
        read_directory(root, max_file_bytes=100)
    assert caught.value.file is not None and caught.value.file.endswith("data.json")


def test_directory_round_trips_through_an_archive(
    source: Callable[[dict[str, bytes]], Path],
) -> None:
    root = source({**FILES, "cases/c.yaml": b"x: 1"})
    assert read_archive(write_archive(read_directory(root))) == FILES


def test_missing_directory_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not found"):
        read_directory(tmp_path / "absent")
