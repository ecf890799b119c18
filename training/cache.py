"""A cache of polar frames on disk: one uint8 memmap per pullback, read lazily.

Layout of a cache directory:
    index.json                 spec, and per pullback: key, patient, n_frames, source
    <key>.polar.npy            uint8 (n_frames, n_depth, n_alines): round(255 * polar)
    <key>.labels.npy           bool (n_frames, n_alines): calcium truth per A-line
    <key>.hard.npy             bool (n_frames,), optional: a hard negative (HARD_NEGATIVE_KINDS) in the frame

Frames are opened with `np.load(mmap_mode="r")`, so memory use is bounded by what a batch
touches (the operating system's page cache does the rest). Patient identifiers stay inside the
index and are never printed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.atomic import atomic_path
from engine.errors import InputError
from engine.json_output import write_json
from engine.model.spec import InputSpec

INDEX = "index.json"
# confounders that look like calcium in part (bright, or shadowing): oversampled in training
HARD_NEGATIVE_KINDS = ("fibrous", "stent", "attenuated", "branch", "interplate", "bubble")


@dataclass(frozen=True)
class CachedPullback:
    """One pullback's entry in a cache index."""

    key: str
    patient: str
    n_frames: int
    source: str = ""


class PolarCache:
    """Read access to a cache directory (see the module docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        index_path = self.root / INDEX
        if not index_path.is_file():
            raise InputError("not a polar cache (index.json missing)", source=str(self.root))
        data = json.loads(index_path.read_text())
        self.spec = InputSpec.from_dict(data["spec"])
        self.pullbacks = [CachedPullback(**entry) for entry in data["pullbacks"]]
        self._polar: dict[str, np.ndarray] = {}
        self._labels: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.pullbacks)

    def polar(self, index: int) -> np.ndarray:
        """uint8 memmap (n_frames, n_depth, n_alines) of pullback `index`."""
        key = self.pullbacks[index].key
        if key not in self._polar:
            self._polar[key] = np.load(self.root / f"{key}.polar.npy", mmap_mode="r")
        return self._polar[key]

    def labels(self, index: int) -> np.ndarray:
        """bool (n_frames, n_alines) truth of pullback `index`."""
        key = self.pullbacks[index].key
        if key not in self._labels:
            self._labels[key] = np.load(self.root / f"{key}.labels.npy")
        return self._labels[key]

    def hard_frames(self, index: int) -> np.ndarray | None:
        """bool (n_frames,) frames of pullback `index` holding a hard negative; None when not recorded."""
        path = self.root / f"{self.pullbacks[index].key}.hard.npy"
        return np.load(path) if path.is_file() else None

    @property
    def patients(self) -> list[str]:
        return [p.patient for p in self.pullbacks]


class CacheWriter:
    """Builds a cache directory pullback by pullback; `close()` writes the index."""

    def __init__(self, root: Path | str, spec: InputSpec) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.spec = spec
        self.entries: list[CachedPullback] = []

    def begin(self, key: str, patient: str, n_frames: int, source: str = "") -> np.ndarray:
        """Open a writable uint8 memmap for a pullback; fill it, then call `end`."""
        shape = (n_frames, self.spec.n_depth, self.spec.n_alines)
        self._pending = CachedPullback(key, patient, n_frames, source)
        return np.lib.format.open_memmap(self.root / f"{key}.polar.npy", mode="w+", dtype=np.uint8, shape=shape)

    def end(self, polar: np.ndarray, labels: np.ndarray, hard: np.ndarray | None = None) -> None:
        """Flush the pullback's frames and store its labels (bool (n_frames, n_alines)) and, when
        given, its hard-negative frames (bool (n_frames,))."""
        entry = self._pending
        if labels.shape != (entry.n_frames, self.spec.n_alines):
            raise ValueError(
                f"labels of {entry.key} must be {(entry.n_frames, self.spec.n_alines)}, got {labels.shape}"
            )
        if hard is not None and np.shape(hard) != (entry.n_frames,):
            raise ValueError(f"hard-negative frames of {entry.key} must be ({entry.n_frames},), got {np.shape(hard)}")
        if isinstance(polar, np.memmap):
            polar.flush()
        with atomic_path(self.root / f"{entry.key}.labels.npy") as partial:
            np.save(partial, labels.astype(bool))
        if hard is not None:
            with atomic_path(self.root / f"{entry.key}.hard.npy") as partial:
                np.save(partial, np.asarray(hard, dtype=bool))
        self.entries.append(entry)

    def add(self, key: str, patient: str, polar: np.ndarray, labels: np.ndarray, source: str = "") -> None:
        """Store a whole in-memory pullback (float polar in [0, 1] or uint8)."""
        out = self.begin(key, patient, polar.shape[0], source)
        out[:] = to_uint8(polar)
        self.end(out, labels)

    def close(self) -> PolarCache:
        index = {"spec": self.spec.to_dict(), "pullbacks": [asdict(e) for e in self.entries]}
        write_json(self.root / INDEX, index, indent=1, digits=None)  # read back: exact
        return PolarCache(self.root)


def to_uint8(polar: np.ndarray) -> np.ndarray:
    """Quantise polar frames to uint8 (float [0, 1] -> round(255 x)); uint8 passes through."""
    if polar.dtype == np.uint8:
        return polar
    return np.clip(np.rint(np.asarray(polar, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
