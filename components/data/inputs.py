"""Inputs: what the user named (files, folders, globs, ``.csv.gz``, ``.zip`` archives) -> what to ingest.

Why a module of its own: users keep CIC-IDS2017 as published (``MachineLearningCSV.zip``,
``GeneratedLabelledFlows.zip``) or gzipped, and one archive is many inputs. Each CSV or parquet
member of a zip archive is an input of its own (``source`` = ``<archive>!<member>``, output stem
from the member's name) and is read as a stream from the archive, never unpacked to disk. Other
members are skipped with a note.
"""
from __future__ import annotations

import glob
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_SUFFIX = ".gz"
ZIP_SUFFIX = ".zip"
MEMBER_SEPARATOR = "!"


@dataclass(frozen=True)
class InputFile:
    """One thing to ingest: a file on disk, or a member of a zip archive on disk."""

    path: Path
    member: str | None = None

    @property
    def source(self) -> str:
        """The manifest's ``source``: absolute path, or ``<absolute archive path>!<member>``."""
        base = str(Path(self.path).absolute())
        return f"{base}{MEMBER_SEPARATOR}{self.member}" if self.member else base

    @property
    def name(self) -> str:
        """File name as the dataset publishes it (the member's own name for archive members)."""
        return PurePosixPath(self.member).name if self.member else Path(self.path).name

    @property
    def display(self) -> str:
        """Short name for messages: ``Monday.csv`` or ``MachineLearningCSV.zip!MachineLearningCVE/Monday.csv``."""
        return f"{Path(self.path).name}{MEMBER_SEPARATOR}{self.member}" if self.member else self.name

    @property
    def stem(self) -> str:
        """Output stem: the name without ``.gz`` and without its format suffix."""
        name = self.name
        if name.lower().endswith(GZIP_SUFFIX):
            name = name[: -len(GZIP_SUFFIX)]
        return PurePosixPath(name).stem if PurePosixPath(name).suffix else name

    @property
    def gzipped(self) -> bool:
        return self.name.lower().endswith(GZIP_SUFFIX)

    def size(self) -> int:
        """Bytes to read (a member: uncompressed); 0 when it cannot be told."""
        try:
            if self.member is None:
                return Path(self.path).stat().st_size
            with zipfile.ZipFile(self.path) as zf:
                return zf.getinfo(self.member).file_size
        except (OSError, KeyError, zipfile.BadZipFile):
            return 0

    @property
    def looks_parquet(self) -> bool:
        return PurePosixPath(self.name.lower().removesuffix(GZIP_SUFFIX)).suffix in PARQUET_SUFFIXES


def display_name(source: str) -> str:
    """``InputFile.display`` from a manifest ``source`` string."""
    base, sep, member = source.partition(f"{ZIP_SUFFIX}{MEMBER_SEPARATOR}")
    if sep:
        return f"{Path(base).name}{ZIP_SUFFIX}{MEMBER_SEPARATOR}{member}"
    return Path(source).name


def is_table_name(name: str) -> bool:
    """A CSV or parquet file name, gzipped or not."""
    lower = name.lower().removesuffix(GZIP_SUFFIX)
    return PurePosixPath(lower).suffix in CSV_SUFFIXES + PARQUET_SUFFIXES


@dataclass(frozen=True)
class Discovery:
    """Inputs to ingest, in a stable order, and what happened to the rest of what was given."""

    files: list[InputFile]
    notes: list[str] = field(default_factory=list)


def discover_inputs(inputs: list[str | os.PathLike]) -> Discovery:
    """Expand files, folders (their CSV/parquet/.gz/.zip files, sorted), globs and zip archives;
    drop repeats.

    A path that does not exist is kept (it fails later with a clear reason, like a file that
    disappears between listing and reading) unless it is a glob pattern that matched nothing.
    """
    files: list[InputFile] = []
    notes: list[str] = []
    seen: set[tuple[str, str | None]] = set()

    def add(item: InputFile, given: str) -> None:
        key = (os.path.realpath(item.path), item.member)
        if key in seen:
            notes.append(f"{given}: given more than once, ingested once")
            return
        seen.add(key)
        files.append(item)

    def add_path(path: Path, given: str) -> None:
        if path.suffix.lower() == ZIP_SUFFIX and zipfile.is_zipfile(path):
            members, member_notes = list_members(path)
            notes.extend(member_notes)
            if not members:
                notes.append(f"{path}: archive has no .csv or .parquet members")
            for member in members:
                add(InputFile(path, member), f"{given}{MEMBER_SEPARATOR}{member}")
            return
        add(InputFile(path), given)  # a .zip that is no zip archive fails later with the reason

    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and (is_table_name(p.name) or p.suffix.lower() == ZIP_SUFFIX))
            if not found:
                notes.append(f"{path}: folder has no .csv, .parquet, .gz or .zip files")
            for p in found:
                add_path(p, str(p))
        elif glob.has_magic(text) and not path.exists():
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
            if not matches:
                notes.append(f"{text}: pattern matched no files")
            for p in matches:
                add_path(p, str(p))
        else:
            add_path(path, text)
    return Discovery(files=files, notes=notes)


def list_members(archive: Path) -> tuple[list[str], list[str]]:
    """CSV/parquet members of a zip archive (sorted), and notes on the members left out."""
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
    members, notes = [], []
    for info in infos:
        name = info.filename
        base = PurePosixPath(name).name
        if info.is_dir():
            continue
        if name.startswith("__MACOSX/") or base.startswith("._"):
            notes.append(f"{archive.name}{MEMBER_SEPARATOR}{name}: macOS metadata, skipped")
        elif not is_table_name(base):
            notes.append(f"{archive.name}{MEMBER_SEPARATOR}{name}: not a .csv or .parquet member, skipped")
        else:
            members.append(name)
    return sorted(members), notes
