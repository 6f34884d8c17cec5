"""Files given to the web app (app.py): an upload is judged by its content (container signature, one frame decoded,
its packets read through), stored under its content hash so a second run on it reuses its poses, and the most recent
kept with their pose caches; what is kept can be listed, sized and forgotten. No Streamlit here.
"""

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import NamedTuple

from deepdance.cache import CACHE_DIR, CHECKPOINT_DIR
from deepdance.cli import UserError
from deepdance.files import DATA_DIR, atomic_path
from deepdance.video import probe_video

MAX_UPLOAD_MB = 200  # bigger uploads are refused (st.file_uploader enforces it in the browser, store_upload here)
SNIFF_BYTES = 64  # header bytes read to recognise a container (WebM's DocType sits within the first ~40)
CONTAINERS = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm", "mkv": ".mkv", "avi": ".avi", "mpeg": ".mpg"}
QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")  # old .mov files start without 'ftyp'
UPLOAD_DIR = DATA_DIR / "uploads"  # uploaded sources, named by content hash (not listed as sources or targets)
TARGET_DIR = DATA_DIR / "targets"  # targets added in the page: kept, their caches and checkpoints refer to them
KEEP_UPLOADS = 8  # uploaded sources kept (most recently uploaded first), each with its pose caches
CHECK_TIMEOUT_S = 60  # s for reading an upload's packets through (cut_short)


def sniff_container(head):
    """Container of a file from its first bytes: 'mp4', 'mov', 'webm', 'mkv', 'avi', 'mpeg', or None."""
    head = bytes(head[:SNIFF_BYTES])
    if head[4:8] == b"ftyp":  # ISO base media (mp4, m4v, 3gp) and QuickTime ('qt  ' brand)
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[4:8] in QUICKTIME_ATOMS:
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, or WebM by its DocType
        return "webm" if b"webm" in head else "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x00\x00\x01\xba":  # MPEG program stream pack header
        return "mpeg"
    return None


def safe_stem(name):
    """A user-given file name's stem reduced to characters that are safe in a path and in markdown."""
    stem = re.sub(r"[^\w.\- ]+", "_", Path(str(name)).name)[:60].strip().lstrip(".")
    return Path(stem).stem.strip() or "upload"


def display_name(name):
    """A user-given file name made safe to show in the page (markdown): `name` with odd characters replaced."""
    safe = re.sub(r"[^\w.\- ]+", "_", Path(str(name)).name)[:60].strip()
    return f"`{safe or 'upload'}`"


def check_upload(data, shown, max_mb=MAX_UPLOAD_MB):
    """The container an upload holds, judged by its first bytes (never its name); UserError if none or too big."""
    size = len(data)
    if size == 0:
        raise UserError(f"{shown} is empty (0 bytes)")
    if size > max_mb * 2**20:
        raise UserError(f"{shown} is {size / 2**20:.0f} MB: uploads are limited to {max_mb} MB")
    kind = sniff_container(data[:SNIFF_BYTES])
    if kind is None:
        raise UserError(
            f"{shown} is not a video this app reads: its content is not MP4/MOV, WebM/MKV, AVI or MPEG "
            "(the file's name is not trusted)"
        )
    return kind


def store_upload(data, name="upload", *, folder=UPLOAD_DIR, keep_name=False, keep=KEEP_UPLOADS, max_mb=MAX_UPLOAD_MB):
    """Check an uploaded video and store it by content: bytes -> the Path of its file.

    The file is <folder>/<sha256[:16]><ext> (keep_name: <folder>/<sha256[:16]>/<safe stem><ext>, for targets, whose
    name the page shows); the same bytes uploaded again return the stored file, so its pose cache is reused. The
    extension comes from the container found, never from the name. The write is atomic under a name unique to the
    call: two sessions storing one file at once both get a complete file. keep: when not None, the older uploads
    beyond that many are removed with their pose caches. UserError (one line for the page) when a check fails;
    nothing is left on disk then.
    """
    shown = display_name(name)
    kind = check_upload(data, shown, max_mb)
    digest = hashlib.sha256(data).hexdigest()[:16]
    if keep_name:
        stored = [p for p in (folder / digest).glob("*") if p.is_file() and not p.name.startswith(".")]
        path = stored[0] if stored else folder / digest / f"{safe_stem(name)}{CONTAINERS[kind]}"
    else:
        path = folder / f"{digest}{CONTAINERS[kind]}"
    if not (path.is_file() and path.stat().st_size == len(data)):
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
                probe_video(tmp)
                if cut_short(tmp):  # its first frame decodes, its end is missing: the run would fail at it, later
                    raise UserError(
                        f"{shown} is cut short: the end of its video is missing (a download or copy that did not "
                        "finish); upload a whole copy"
                    )
        except UserError as e:
            if "cut short" in str(e):
                raise
            raise UserError(
                f"{shown} looks like {kind.upper()} but no frame can be decoded from it: corrupt, truncated or an "
                "unsupported codec"
            ) from None
    path.touch()  # the newest upload: kept by evict_uploads
    if keep is not None:
        evict_uploads(folder, keep, current=path)
    return path


def cut_short(path):
    """Whether a video's container points past the end of the file (ffmpeg reads every packet of its picture
    stream without decoding them: a second or so for 200 MB). Unknown (ffmpeg missing or stuck): not said."""
    import subprocess

    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
           "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]  # fmt: skip
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=CHECK_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "partial file" in r.stderr


def evict_uploads(folder, keep, *, current=None):
    """Remove the uploads in `folder` beyond the `keep` most recent (never `current`), with their pose caches."""

    def mtime(p):
        try:
            return p.stat().st_mtime
        except OSError:  # another session removed it meanwhile
            return 0.0

    files = sorted((p for p in Path(folder).glob("*") if p.is_file() and not p.name.startswith(".")), key=mtime,
                   reverse=True)  # fmt: skip
    for old in [p for p in files if p != current][max(0, keep - 1) :]:
        old.unlink(missing_ok=True)  # another session may have removed it first
        for cache in CACHE_DIR.glob(f"{old.stem}-*"):
            remove_cache(cache)


def remove_cache(cache):
    """A pose cache and the models trained on it. Its build lock's file is not touched: it exists only while an
    extraction holds it (files.lock_file), and removing it then would let a second one start beside it."""
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(CHECKPOINT_DIR / cache.name, ignore_errors=True)


class Kept(NamedTuple):
    """What the page keeps of the files given to it (uploaded sources, added targets), with the space it takes."""

    sources: int  # uploaded source videos (UPLOAD_DIR)
    targets: int  # uploaded target videos (TARGET_DIR)
    caches: int  # their pose caches
    models: int  # generators trained on those targets
    bytes: int  # all of it


def folder_bytes(path):
    """Bytes of the files under `path` (a file: its size; gone meanwhile: 0)."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    total = 0
    for p in files:
        try:
            total += p.stat().st_size
        except OSError:  # removed while we counted
            pass
    return total


def uploaded_caches():
    """The pose caches of uploaded videos (sources or targets): read from their meta.json's source, or, for a cache
    without one yet, from an uploaded source's name (<content hash>-...)."""
    folders = (UPLOAD_DIR.resolve(), TARGET_DIR.resolve())
    stems = {p.stem for p in UPLOAD_DIR.glob("*") if p.is_file()}
    found = []
    for cache in (p for p in CACHE_DIR.glob("*") if p.is_dir() and not p.name.startswith(".")):
        try:
            video = Path(json.loads((cache / "meta.json").read_text())["source"]).resolve()
            mine = any(video.is_relative_to(f) for f in folders)
        except (OSError, ValueError, KeyError, TypeError):
            mine = cache.name.split("-")[0] in stems
        if mine:
            found.append(cache)
    return found


def kept_uploads():
    """What is kept of the uploads now -> Kept."""
    sources = [p for p in UPLOAD_DIR.glob("*") if p.is_file() and not p.name.startswith(".")]
    targets = [p for p in TARGET_DIR.glob("*/*") if p.is_file() and not p.name.startswith(".")]
    caches = uploaded_caches()
    models = [CHECKPOINT_DIR / c.name for c in caches if (CHECKPOINT_DIR / c.name).is_dir()]
    size = sum(folder_bytes(p) for p in (UPLOAD_DIR, TARGET_DIR, *caches, *models))
    return Kept(len(sources), len(targets), len(caches), len(models), size)


def forget_uploads():
    """Delete every uploaded video (sources and targets), their pose caches and the models trained on them ->
    the bytes freed. Videos given by path and the built-in sample are not uploads: they stay."""
    before = kept_uploads().bytes
    for cache in uploaded_caches():
        remove_cache(cache)
    for folder in (UPLOAD_DIR, TARGET_DIR):
        shutil.rmtree(folder, ignore_errors=True)
    return before - kept_uploads().bytes


def shown_bytes(n):
    """'85 MB', '640 KB', '0 bytes'."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.0f} {unit}" if n >= 10 * size else f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def video_summary(path):
    """'901 frames at 29.97 fps, 960x720' for a readable video (its own declared numbers)."""
    n, fps, w, h = probe_video(path)
    return f"{n} frames at {fps:.4g} fps, {w}x{h}"
