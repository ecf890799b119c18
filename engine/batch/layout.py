"""The batch output folder: one report folder per pullback, verified by a manifest written last.

    OUT/pullbacks/<stem>-<10 hex>/   the files of `ivuscal analyze` + manifest.json
    OUT/cohort.csv, cohort.parquet, failures.csv, batch.json, cohort_*.png (engine/batch/cohort.py)

The folder name is the input's file stem and a hash of its absolute path, so equal file names
in different folders never collide and a rerun finds the same folder. A report is built in a
temporary sibling folder (`.tmp-...`); `manifest.json` (SHA-256 of every file, the input's size
and modification time, the settings fingerprint) is written last and the folder is then renamed
into place. A rerun skips a pullback only when its manifest verifies; anything else is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.model.weights import file_sha256

PULLBACKS = "pullbacks"
MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
FORMAT = "ivuscal-batch-pullback/1"


def report_key(source: Path) -> str:
    """`<stem>-<10 hex of SHA-1 of the absolute path>`: stable per input, distinct for equal names."""
    digest = hashlib.sha1(str(Path(source).absolute()).encode()).hexdigest()[:10]
    return f"{Path(source).stem}-{digest}"


def report_dir(out_dir: Path, source: Path) -> Path:
    return Path(out_dir) / PULLBACKS / report_key(source)


@dataclass(frozen=True)
class SourceStamp:
    """What identifies the input's content cheaply: size in bytes and modification time in ns."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> SourceStamp:
        stat = Path(path).stat()
        return cls(stat.st_size, stat.st_mtime_ns)


def write_manifest(folder: Path, source: Path, fingerprint: str, row: dict[str, Any]) -> None:
    """Hash every file in `folder` and write manifest.json last (with the cohort `row`)."""
    files = {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {
        "format": FORMAT,
        "source": {"path": str(source), **asdict(SourceStamp.of(source))},
        "fingerprint": fingerprint,
        "files": files,
        "row": row,
    }
    tmp = folder / (MANIFEST + ".part")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, folder / MANIFEST)


def verified_row(folder: Path, source: Path, fingerprint: str) -> dict[str, Any] | None:
    """The cohort row of a complete report made from this very input with these settings, else None.

    Complete means: manifest.json readable, same format and fingerprint, the input's size and
    modification time unchanged, exactly the listed files present and every hash equal.
    """
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
        stamp = SourceStamp.of(source)
        if (
            manifest.get("format") != FORMAT
            or manifest.get("fingerprint") != fingerprint
            or manifest["source"]["size"] != stamp.size
            or manifest["source"]["mtime_ns"] != stamp.mtime_ns
        ):
            return None
        present = {p.name for p in Path(folder).iterdir() if p.name != MANIFEST}
        files = manifest["files"]
        if present != set(files) or any(file_sha256(Path(folder) / name) != sha for name, sha in files.items()):
            return None
        return manifest["row"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def temporary_dir(final: Path) -> Path:
    """A fresh hidden sibling of `final` to build a report in."""
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    return tmp


def publish(tmp: Path, final: Path, source: Path, fingerprint: str) -> bool:
    """Rename the finished `tmp` to `final`; False (and `tmp` removed) when a verified copy is already there.

    A copy can already be there when a task ran twice (a worker lost contact, not its work); the
    first complete one stays, so a pullback never has two reports.
    """
    if final.exists():
        if verified_row(final, source, fingerprint) is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        shutil.rmtree(final)
    os.rename(tmp, final)
    return True


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete `.tmp-*` folders left by tasks that died (run before a batch starts); their number."""
    root = Path(out_dir) / PULLBACKS
    stale = [p for p in root.glob(f"{TMP_PREFIX}*") if p.is_dir()] if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)
