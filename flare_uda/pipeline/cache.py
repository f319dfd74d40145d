"""On-disk cache of stage outputs, keyed by the stage's config and its inputs.

Each stage writes into ``run_dir/<stage>-<key>/`` and, when done, a
``DONE.json`` marker (written last, atomically). A stage whose folder holds the
marker is skipped, so a killed run resumes at the first unfinished stage; a
changed config section changes the key of that stage and of every stage
downstream (keys chain), so only what depends on the change reruns.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flare_uda._atomic import write_json


def stage_key(name: str, config: Any, upstream: tuple[str, ...] = ()) -> str:
    """A short stable hash of a stage name, its JSON-able config and upstream keys."""
    payload = json.dumps(
        {"stage": name, "config": config, "upstream": list(upstream)}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class StageFolder:
    """A stage's cache entry: its folder and its key."""

    name: str
    key: str
    root: Path

    @property
    def dir(self) -> Path:
        return self.root / f"{self.name}-{self.key}"

    @property
    def done(self) -> bool:
        return (self.dir / "DONE.json").exists()

    def mark_done(self, info: dict | None = None) -> None:
        write_json(
            self.dir / "DONE.json",
            {
                "stage": self.name,
                "key": self.key,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                **(info or {}),
            },
        )

    def info(self) -> dict:
        return json.loads((self.dir / "DONE.json").read_text())


class StageCache:
    """Stage folders under one run directory."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)

    def stage(self, name: str, config: Any, upstream: tuple[StageFolder, ...] = ()) -> StageFolder:
        """The folder of stage ``name`` keyed by ``config`` and its upstream folders' keys."""
        key = stage_key(name, config, tuple(s.key for s in upstream))
        return self.folder(name, key, create=True)

    def folder(self, name: str, key: str, create: bool = False) -> StageFolder:
        """The folder of stage ``name`` with cache key ``key`` (made when ``create``)."""
        st = StageFolder(name, key, self.run_dir)
        if create:
            st.dir.mkdir(parents=True, exist_ok=True)
        return st
