"""BagIt layout, checksums and the deterministic zip of a replication bundle.

A bundle is a BagIt bag (RFC 8493): ``bagit.txt``, ``bag-info.txt``, the payload under
``data/``, ``manifest-sha256.txt`` over every payload file and ``tagmanifest-sha256.txt`` over
every other file (so the manifests themselves are covered). The files are written here (sorted,
so that the same content gives the same bytes); they are *checked* with the Library of Congress
``bagit`` package, the reference implementation. The zip is written with ``repro-zipfile``
(fixed 1980-01-01 timestamps, fixed permissions) with its entries in sorted order.

Examples
--------
>>> import tempfile, pathlib
>>> bag = pathlib.Path(tempfile.mkdtemp()) / "demo"
>>> (bag / "data").mkdir(parents=True)
>>> _ = (bag / "data" / "a.txt").write_text("hello\\n")
>>> write_bag_files(bag, {"External-Description": "demo"})
>>> validate_bag(bag)
[]
>>> _ = (bag / "data" / "a.txt").write_text("changed\\n")
>>> validate_bag(bag)
['data/a.txt: checksum mismatch']
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import polars as pl

__all__ = [
    "content_sha256",
    "extract_zip",
    "sha256_bytes",
    "sha256_file",
    "validate_bag",
    "write_bag_files",
    "write_zip",
]

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
MANIFEST = "manifest-sha256.txt"
TAGMANIFEST = "tagmanifest-sha256.txt"


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``.

    Examples
    --------
    >>> sha256_bytes(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_sha256(frame: pl.DataFrame, key: str) -> str:
    """Order-independent checksum of a validated table: SHA-256 of its CSV sorted by ``key``.

    The same rows in any order, and in any file format, give the same checksum (the frame is
    the validated contract columns, so extra columns and spelling variants do not count).

    Examples
    --------
    >>> a = pl.DataFrame({"id": ["b", "a"], "x": [2, 1]})
    >>> content_sha256(a, "id") == content_sha256(a.reverse(), "id")
    True
    """
    buf = io.BytesIO()
    frame.sort(key, maintain_order=True).write_csv(buf)
    return sha256_bytes(buf.getvalue())


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def write_bag_files(bag: Path, info: Mapping[str, str]) -> None:
    """Write ``bagit.txt``, ``bag-info.txt`` and both manifests for the files under ``bag``.

    Every file already in ``bag`` outside ``data/`` is a tag file and goes into the tag
    manifest. ``bag-info.txt`` gets ``Payload-Oxum`` and the given fields (sorted); no
    ``Bagging-Date``, so that the bag is reproducible.
    """
    bag = Path(bag)
    (bag / "bagit.txt").write_text(BAGIT_TXT, encoding="utf-8", newline="\n")
    payload = [f for f in _files(bag) if f.startswith("data/")]
    total = sum((bag / f).stat().st_size for f in payload)
    fields = {**info, "Payload-Oxum": f"{total}.{len(payload)}"}
    text = "".join(f"{k}: {' '.join(str(fields[k]).split())}\n" for k in sorted(fields))
    (bag / "bag-info.txt").write_text(text, encoding="utf-8", newline="\n")
    lines = [f"{sha256_file(bag / f)}  {f}\n" for f in payload]
    (bag / MANIFEST).write_text("".join(lines), encoding="utf-8", newline="\n")
    tags = [f for f in _files(bag) if not f.startswith("data/") and f != TAGMANIFEST]
    lines = [f"{sha256_file(bag / f)}  {f}\n" for f in tags]
    (bag / TAGMANIFEST).write_text("".join(lines), encoding="utf-8", newline="\n")


@contextmanager
def _quiet_bagit() -> Iterator[None]:
    log = logging.getLogger("bagit")
    old = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(old)


def _manifest_problems(bag: Path) -> list[str]:
    """Per-file comparison with both manifests (details when bagit stops at Payload-Oxum)."""
    listed: dict[str, str] = {}
    for name in (MANIFEST, TAGMANIFEST):
        try:
            text = (bag / name).read_text(encoding="utf-8")
        except OSError:
            return [f"{name}: missing"]
        for line in text.splitlines():
            digest, _, rel = line.strip().partition(" ")
            if rel.strip():
                listed[rel.strip()] = digest
    out = []
    present = set(_files(bag)) - {TAGMANIFEST}
    for rel in sorted(listed):
        if rel not in present:
            out.append(f"{rel}: missing")
        elif sha256_file(bag / rel) != listed[rel]:
            out.append(f"{rel}: checksum mismatch")
    for rel in sorted(present - set(listed)):
        out.append(f"{rel}: not in the manifest")
    return out


def validate_bag(bag: str | Path) -> list[str]:
    """Check a bag with the ``bagit`` reference implementation; return the problems found.

    Returns
    -------
    list of str
        One line per problem (``"<file>: checksum mismatch"``, ``"<file>: missing"``,
        ``"<file>: not in the manifest"``, or a structural error); empty when the bag is
        intact.
    """
    import bagit

    bag = Path(bag)
    with _quiet_bagit():
        try:
            b = bagit.Bag(str(bag))
            b.validate(processes=1)
        except bagit.BagValidationError as exc:
            out = []
            for d in exc.details or []:
                path = getattr(d, "path", "?")
                if isinstance(d, bagit.ChecksumMismatch):
                    out.append(f"{path}: checksum mismatch")
                elif isinstance(d, bagit.FileMissing):
                    out.append(f"{path}: missing")
                elif isinstance(d, bagit.UnexpectedFile):
                    out.append(f"{path}: not in the manifest")
                else:
                    out.append(f"{path}: {type(d).__name__}")
            return sorted(out) or _manifest_problems(bag) or [
                f"bag is not valid: {exc.message}"]
        except bagit.BagError as exc:
            return _manifest_problems(bag) or [f"bag is not valid: {exc}"]
    return _manifest_problems(bag)


def write_zip(bag: Path, target: Path, arcroot: str) -> None:
    """Zip every file of ``bag`` under the folder ``arcroot/``, sorted, with fixed metadata.

    ``repro-zipfile`` fixes the timestamps (1980-01-01, or ``SOURCE_DATE_EPOCH`` when set) and
    the permissions (0644); entries are written in sorted order with DEFLATE level 9.
    """
    from repro_zipfile import ReproducibleZipFile

    with ReproducibleZipFile(target, "w", compression=zipfile.ZIP_DEFLATED,
                             compresslevel=9) as zf:
        for rel in _files(bag):
            zf.write(bag / rel, f"{arcroot}/{rel}")


def extract_zip(zip_path: Path, dest: Path) -> Path:
    """Extract a bundle zip safely (no absolute paths, no ``..``); return the bag folder."""
    dest = Path(dest)
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            p = PurePosixPath(name)
            if p.is_absolute() or ".." in p.parts or "\\" in name:
                raise ValueError(f"{Path(zip_path).name}: unsafe member path in the zip")
        zf.extractall(dest)
    return find_bag(dest)


def find_bag(folder: Path) -> Path:
    """The bag in ``folder``: the folder itself or its single subfolder with ``bagit.txt``."""
    folder = Path(folder)
    if (folder / "bagit.txt").is_file():
        return folder
    subs = [p for p in sorted(folder.iterdir()) if (p / "bagit.txt").is_file()]
    if len(subs) == 1:
        return subs[0]
    raise FileNotFoundError(f"{folder.name}: not a natexp bundle (no bagit.txt)")
