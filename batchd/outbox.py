"""The outbox: one folder per input file, outputs first, the original moved in, result.json last.

Every file is written under a temporary name and renamed, so nothing half-written ever
stands under a final name; a folder is complete exactly when its result.json exists.
Each step can be repeated after a crash with the same outcome.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

TEMP_PREFIX = ".batchd-tmp-"
NAME_MAX = 255


def _temp(folder: Path) -> tuple[int, Path]:
    """A new temporary file in ``folder``, with the permissions the umask gives (not 0600)."""
    while True:
        tmp = folder / f"{TEMP_PREFIX}{secrets.token_hex(6)}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write(path: Path, data: bytes, *, sync: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    fd, tmp = _temp(path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def folder_name(outbox: Path, source: str, taken: Callable[[str], bool]) -> str:
    """A folder, relative to the outbox, for ``source``: its own path, or with ``~N`` if taken.

    ``taken(name)`` says whether another document already holds that folder name. Each
    component is shortened to fit the filesystem's name limit; nothing can point outside
    the outbox, since ``source`` comes from walking the inbox and ``..`` is refused.
    """
    parts = [p for p in Path(source).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise ValueError(f"refusing outbox folder for {source!r}")
    parents = [_fit(p) for p in parts[:-1]]
    leaf = parts[-1]
    n = 1
    while True:
        candidate = _fit(leaf, "" if n == 1 else f"~{n}")
        rel = "/".join([*parents, candidate])
        target = outbox / rel
        if not taken(rel) and (not target.exists() or (target.is_dir() and not any(target.iterdir()))):
            return rel
        n += 1


def _fit(name: str, suffix: str = "") -> str:
    """``name + suffix`` cut, at a character boundary, to NAME_MAX bytes."""
    encoded = name.encode("utf-8", "surrogateescape")
    room = NAME_MAX - len(suffix.encode())
    if len(encoded) > room:
        encoded = encoded[:room]
        name = encoded.decode("utf-8", "ignore")
    return name + suffix


def original_name(name: str, outputs: set[str]) -> str:
    """The original keeps its name unless an output file has it."""
    if name in outputs or name == "result.json":
        return _fit("original-" + name)
    return name


def write_outputs(folder: Path, outputs: dict[str, bytes]) -> None:
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        # Written before (a crash, a retry): temporary files left over from then go.
        for stale in folder.glob(TEMP_PREFIX + "*"):
            stale.unlink(missing_ok=True)
    for name, data in outputs.items():
        atomic_write(folder / name, data)


def move_original(src: Path, dest: Path) -> bool:
    """Move the original into its folder; True if it is there (now or from an earlier try).

    A rename where the outbox shares the inbox's filesystem; otherwise a copy under a
    temporary name, a rename, and only then the removal of the source.
    """
    if not src.exists() and not src.is_symlink():
        return dest.exists()
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dest)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another filesystem
            raise
        fd, tmp = _temp(dest.parent)
        os.close(fd)
        shutil.copy2(src, tmp)
        os.replace(tmp, dest)
        src.unlink()
    return True


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """result.json, last, synced: its presence says the folder is complete."""
    data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    atomic_write(folder / "result.json", data, sync=True)


#: Up to this many staged result.json files are synced one by one; more, by one sync().
SYNC_EACH_UP_TO = 4


def stage_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """result.json's content under a temporary name in ``folder``, not yet in place.

    For many documents at once: stage each, :func:`sync_staged` them all, then
    :func:`place_manifest` each; as with :func:`write_manifest`, no result.json ever
    stands under its name before its content is on disk.
    """
    data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    fd, tmp = _temp(folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def sync_staged(paths: list[Path]) -> None:
    """Put staged files' content on disk: an fsync each for a few, one sync() for many.

    One sync() covers every file written so far (outputs and moved originals too) for
    the price of about one fsync, where an fsync per document made a storm of them.
    """
    if len(paths) > SYNC_EACH_UP_TO:
        os.sync()
        return
    for path in paths:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def place_manifest(staged: Path, folder: Path) -> None:
    """A staged (and synced) result.json into place: from now on the folder is complete."""
    os.replace(staged, folder / "result.json")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
