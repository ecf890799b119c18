"""Expand `ivuscal batch` SOURCE arguments into the input files, once each, in a stable order.

A SOURCE is a DICOM file, a folder (searched recursively for DICOM files) or a text file listing
paths, one a line (`#` comments and blank lines ignored; relative paths are relative to the list).
In a folder, a DICOM file is one named `*.dcm` / `*.dicom` (any case) or one without a suffix
whose bytes 128-131 are the DICOM preamble `DICM`; simulator side files (`*.truth.npz`,
`*.lesions.json`) and anything else are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.errors import InputError

DICOM_SUFFIXES = (".dcm", ".dicom")
LIST_SUFFIXES = (".txt", ".list", ".lst")


def has_dicom_preamble(path: Path) -> bool:
    """True when bytes 128-131 of `path` read `DICM` (PS3.10 file preamble)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _is_dicom_name(path: Path) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES or (path.suffix == "" and has_dicom_preamble(path))


def _in_folder(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _is_dicom_name(p))


def _in_list(list_file: Path) -> list[Path]:
    try:
        lines = list_file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read the list of paths ({error})", source=str(list_file)) from None
    paths = []
    for line in lines:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            path = Path(entry).expanduser()
            paths.append(path if path.is_absolute() else list_file.parent / path)
    return paths


def expand_sources(sources: Iterable[Path]) -> list[Path]:
    """Absolute input paths, de-duplicated, in the order given (folders sorted).

    A listed path that does not exist is kept: its task records "file not found". A SOURCE on
    the command line that does not exist raises InputError (a usage mistake, nothing ran).
    """
    found: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            found.extend(_in_folder(source))
        elif source.is_file():
            is_list = source.suffix.lower() in LIST_SUFFIXES and not has_dicom_preamble(source)
            found.extend(_in_list(source) if is_list else [source])
        else:
            raise InputError("no such file or folder", source=str(source))
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path.absolute(), None)
    return list(unique)
