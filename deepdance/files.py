"""Where results go and how they are written: the data folder, atomic writes safe across threads and processes,
room checks, PNGs."""

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from deepdance.cli import _OS_ERRORS, UserError

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # the repository: the scripts, data/, out/


def resolved(path):
    """`path` made absolute with its symbolic links followed; a symbolic link loop (where Path.resolve raises a
    RuntimeError) is left unresolved: the first use of the path then fails with ELOOP, an OSError that run_cli says
    in one line naming it."""
    path = Path(path).expanduser()
    try:
        return path.resolve()
    except RuntimeError:
        return path.absolute()


# Caches, checkpoints and the sample live here; DEEPDANCE_DATA moves them (tests use a temp dir). Empty counts as
# unset (`DEEPDANCE_DATA= python ...` is how a shell clears it), not as the current folder. Resolved here, at
# import: a loop must not raise before run_cli can say it in one line.
DATA_DIR = resolved(os.environ.get("DEEPDANCE_DATA") or ROOT / "data")


# --------------------------------------------------------------------------- atomic writes

# atomic_path's temporary names: .tmp-<token>-<name> (being written), .old-<token>-<name> (being replaced), each
# owned by the process holding an flock on .lock-<token>. The kernel drops the lock when its owner dies, however
# it dies and in whatever PID namespace: that, not a PID, tells a stale temp from one being written.
_TEMP_NAME = re.compile(r"\.(tmp|old)-([0-9a-f]{16})-(.+)")
_MAX_NAME = 255  # bytes per file name on the usual file systems


def short_name(name, room):
    """`name` cut to `room` bytes of UTF-8 (whole characters), its suffix kept: ffmpeg picks the format by it."""
    if len(name.encode()) <= room:
        return name
    suffix = Path(name).suffix if len(Path(name).suffix.encode()) < room // 2 else ""
    stem = name[: len(name) - len(suffix)]
    while len((stem + suffix).encode()) > room:
        stem = stem[:-1]
    return stem + suffix


class _TempOwner:
    """The flock that marks this call's temporaries as alive (see _TEMP_NAME)."""

    def __init__(self, folder):
        while True:
            self.token = secrets.token_hex(8)
            self.lock = Path(folder) / f".lock-{self.token}"
            self.fd = os.open(self.lock, os.O_CREAT | os.O_RDWR, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:  # a cleaner may have removed the file between open and flock: then take another token
                if os.fstat(self.fd).st_ino == os.stat(self.lock).st_ino:
                    return
            except FileNotFoundError:
                pass
            os.close(self.fd)

    def name(self, kind, path):
        return path.with_name(f".{kind}-{self.token}-{short_name(path.name, _MAX_NAME - 22)}")

    def release(self):
        try:
            self.lock.unlink()
        except OSError:
            pass
        os.close(self.fd)


def _owner_gone(folder, token):
    """True (and the lock file removed) if no live process owns `token`'s temporaries."""
    lock = Path(folder) / f".lock-{token}"
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return True  # never locked (its owner died before locking) or already cleaned
    except OSError:
        return False  # cannot tell (another user's, read-only): leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False  # held: being written right now
    try:
        lock.unlink()
    except OSError:
        pass
    os.close(fd)
    return True


def clean_stale_temps(folder):
    """Remove what atomic_path left in `folder` when its process was killed (SIGKILL, power loss): the entries
    whose owner's lock is free. An .old- folder whose target is missing (killed between the two renames) is the
    previous complete result: it is put back. Returns the names removed or restored."""
    folder = Path(folder)
    done = []
    try:
        entries = sorted(folder.iterdir(), key=lambda e: not e.name.startswith(".old-"))  # restores first
    except OSError:  # no folder yet, or unreadable: nothing to clean
        return done
    gone = {}
    for entry in entries:
        m = _TEMP_NAME.fullmatch(entry.name)
        if not m:
            continue
        if m[2] not in gone:
            had_lock = (folder / f".lock-{m[2]}").exists()
            gone[m[2]] = _owner_gone(folder, m[2])
            if gone[m[2]] and had_lock:
                done.append(f".lock-{m[2]}")
        if not gone[m[2]]:
            continue
        target = folder / m[3]
        try:
            if m[1] == "old" and not target.exists():
                os.replace(entry, target)
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:  # another process cleaned it first
            continue
        done.append(entry.name)
    for lock in folder.glob(".lock-*"):  # locks whose temporaries are gone, left by a killed process
        if lock.name[6:] not in gone and _owner_gone(folder, lock.name[6:]):
            done.append(lock.name)
    return done


@contextlib.contextmanager
def signals_deferred():
    """Ctrl-C / SIGTERM that arrive during the block are held and delivered when it is done.

    Handlers, not the signal mask: Python runs handlers in the main thread whichever thread the kernel picked.
    Outside the main thread handlers cannot be changed, and signals reach the main thread anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in _DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(caught):
            signal.raise_signal(sig)


_DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds.

    The temporary's name is unique per process, thread and call, so two writers of one file never share it; the
    last to finish wins and both leave a complete file. A process killed outright cannot clean up: its leftovers
    are removed by the next atomic_path in that folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path.parent)
    try:
        owner = _TempOwner(path.parent)
    except OSError as e:
        raise _user_named(e, path, None) from None
    tmp, old = owner.name("tmp", path), owner.name("old", path)
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            # Directories cannot be replaced atomically: move the old one aside first, both renames or neither.
            with signals_deferred():
                os.replace(path, old)
                os.replace(tmp, path)
        else:
            os.replace(tmp, path)
    except OSError as e:
        raise _user_named(e, path, tmp) from None
    finally:
        if old.is_dir() and path.is_dir():  # the replaced one (also when a deferred Ctrl-C lands right after)
            shutil.rmtree(old, ignore_errors=True)
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        owner.release()


def _user_named(e, path, tmp):
    """An OSError met while writing `path` through atomic_path, naming what the user asked for: the temporaries
    (.tmp-, .old-, .lock-) are ours, not theirs, and a write that fails with no name (disk full) named nothing."""
    if e.errno is None:
        return e
    name = Path(e.filename) if e.filename else None
    if name is None or name == tmp or _TEMP_NAME.fullmatch(name.name) or name.name.startswith(".lock-"):
        where = path
    elif tmp is not None and tmp in name.parents:  # a file inside a folder being written whole (a cache)
        where = path / name.relative_to(tmp)
    else:
        return e
    return OSError(e.errno, e.strerror, str(where))  # the subclass its errno maps to (FileNotFoundError, ...)


# --------------------------------------------------------------------------- a lock that leaves no file


@contextlib.contextmanager
def lock_file(path, *, on_wait=None):
    """Hold an exclusive lock named `path` for the block, against other threads and processes; the file is removed
    as the block ends, so no empty lock files pile up beside what they guard. on_wait(): called once, before
    waiting, when another holder has the lock.

    Removing a lock file is safe under two rules: its holder removes it while still holding it, and a locker that
    gets the lock checks that the name still leads to the file it locked (_locked_fd). One that waited on a file
    since removed starts over on the name, where a newcomer may hold a new file already; without the check, both
    would hold "the" lock at once.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _locked_fd(path, on_wait)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # a folder made read-only meanwhile: the empty file stays, harmless
            path.unlink()
        os.close(fd)


def _locked_fd(path, on_wait):
    """A descriptor of `path` holding its flock, the name still leading to it (see lock_file)."""
    waited = False
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None and not waited:
                    on_wait()
                waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _still_named(fd, path):
                return fd
        except BaseException:  # Ctrl-C while waiting, an OSError: nothing held
            os.close(fd)
            raise
        os.close(fd)  # its holder removed it as it let go: start over on the name


def _still_named(fd, path):
    """True if `path` still leads to the file open as fd (not removed, nor replaced by a newer one)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    locked = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (locked.st_dev, locked.st_ino)


def clean_stale_locks(folder, pattern):
    """Remove the lock_file files in `folder` matching `pattern` that nobody holds: a holder killed outright
    (SIGKILL) could not remove its own. Each is taken without waiting and removed while held, as lock_file removes
    its own, so a locker that opened it meanwhile starts over; one held is left. Returns the names removed."""
    removed = []
    for path in sorted(Path(folder).glob(pattern)):
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:  # removed meanwhile, or not ours to open
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _still_named(fd, path):
                path.unlink()
                removed.append(path.name)
        except OSError:  # held: in use right now
            pass
        finally:
            os.close(fd)
    return removed


def check_writable(folder, *, need_bytes=0, what="the results"):
    """UserError now, before long work, if `folder` cannot take `what`: a file in the way, read-only, or fewer than
    need_bytes free. Creates nothing: a folder that does not exist yet is judged by its nearest existing parent."""
    folder = Path(folder).absolute()
    place = folder
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise UserError(f"cannot write {what} to {folder}: a file stands where a folder is needed ({place})")
    try:
        with tempfile.NamedTemporaryFile(dir=place, prefix=".probe-"):
            pass
    except OSError as e:
        raise UserError(f"cannot write {what} to {folder}: {_OS_ERRORS.get(e.errno, e.strerror)}") from None
    free = shutil.disk_usage(place).free
    if free < need_bytes:
        raise UserError(f"cannot write {what} to {folder}: disk full ({free / 2**20:.0f} MB free, about "
                        f"{need_bytes / 2**20:.0f} MB needed)")  # fmt: skip


# Folders a command's output must never land in: what every later command reads as given.
KEPT_PLACES = ((DATA_DIR / "sample", "the built-in sample clips"), (DATA_DIR / "cache", "the pose caches"))


def output_path(value, *, option, suffixes=(), inputs=(), need_bytes=0, folder=False):
    """The one rule for a file (or, folder=True, a folder) a command writes: `value` as the user typed it ->
    resolved Path; UserError, naming it, before any work if it is a symbolic link loop, lacks one of `suffixes`,
    is a folder where a file goes (or the reverse), would overwrite one of `inputs` (the videos the command reads)
    or land among the sample clips or the caches, or its folder cannot take need_bytes (a long recording)."""
    shown = f"{option} {value}"
    try:
        path = Path(value).expanduser().resolve()
    except RuntimeError:  # Path.resolve's word for a symbolic link loop
        raise UserError(f"cannot write {shown}: a symbolic link loop (too many levels of symbolic links)") from None
    except OSError as e:  # a name over 255 bytes, a component that is not a folder...
        raise UserError(f"cannot write {shown}: {_OS_ERRORS.get(e.errno, e.strerror)}") from None
    kinds = " or ".join(f"{'an' if k[1:2] in 'aefhilmnorsx' else 'a'} {k}" for k in suffixes)  # "an .mp4", "a .png"
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(f"{option} must name {kinds} file, got {value}")
    try:
        is_dir = path.is_dir()
        if folder and path.exists() and not is_dir:
            raise UserError(f"{shown} is a file; name a folder")
    except OSError as e:  # a name over 255 bytes...
        raise UserError(f"cannot write {shown}: {_OS_ERRORS.get(e.errno, e.strerror)}") from None
    if not folder and is_dir:
        raise UserError(f"{shown} is a directory; name {kinds or 'a'} file")
    for given in inputs:
        if given is not None and (path == resolved(given) or path.exists() and _same_file(path, given)):
            raise UserError(f"{shown} would overwrite an input video ({given}); choose another name")
    for place, what in KEPT_PLACES:
        # Equal or inside: either would replace what later commands read.
        if path == place or place in path.parents:
            raise UserError(f"{shown} is among {what} ({place}), which later commands read; choose another place")
    what = f"the {option} folder" if folder else f"{option} {path.name}"  # check_writable adds the place
    check_writable(path if folder else path.parent, need_bytes=need_bytes, what=what)
    return path


def _same_file(a, b):
    """True if a and b are one file (a hard link, another name of it); False where either cannot be looked at."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def png_bytes(image, *, name, compression=9):
    """A (H, W, 3) uint8 BGR image as PNG bytes; UserError naming it (`name`) if it cannot be encoded."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise UserError(f"cannot encode {name} as PNG (image of shape {np.shape(image)})")
    return data.tobytes()


def write_png(path, image, compression=9):
    """Write a (H, W, 3) uint8 BGR image as a PNG, atomically (encoded first: a bad image leaves no file)."""
    data = png_bytes(image, name=Path(path).name, compression=compression)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
