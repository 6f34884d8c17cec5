"""Command-line plumbing every script shares: one-line user errors, exit codes, Ctrl-C / SIGTERM, test pauses."""

import argparse
import errno
import os
import signal
import sys
import threading
import time
from pathlib import Path


class UserError(Exception):
    """A problem with the user's input: reported as one line on stderr, never a traceback."""


def _usage_error(parser, message):
    """argparse's usage errors as a UserError: one line naming the problem and --help, not the usage block."""
    raise UserError(f"{message} (see: python {parser.prog} --help)")


def _terminate(signum, frame):
    raise KeyboardInterrupt  # `kill <pid>` cleans up like Ctrl-C: temporary files removed, previous results kept


# What an OSError means, in the words a user needs (errno -> phrase); the file it concerns is named too.
_OS_ERRORS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENAMETOOLONG: "file name too long (at most 255 bytes per name)",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EISDIR: "a folder stands where a file is needed",
    errno.ENOENT: "no such file or folder",
    errno.ELOOP: "a symbolic link loop (too many levels of symbolic links)",
}
INTERRUPTED = "nothing half-written was kept, earlier results are intact"


def os_error_line(e, doing="cannot write"):
    """One line for an OSError: what failed, on which file, in plain words ('disk full', 'read-only ...')."""
    what = _OS_ERRORS.get(e.errno, e.strerror or type(e).__name__)
    where = f" {e.filename}" if e.filename else ""
    return f"{doing}{where}: {what}"


def run_cli(main, argv=None, interrupted=INTERRUPTED, after_error=None):
    """Run `main(argv)`; turn UserError, storage faults (OSError), bad arguments, Ctrl-C and SIGTERM into one
    stderr line and a non-zero exit. interrupted: what the Ctrl-C line adds (e.g. how to continue).
    after_error(e): called once a UserError's line is out, before the exit (torchrun's rank 0 releases the others)."""
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers can only be set there
    previous = argparse.ArgumentParser.error, signal.getsignal(signal.SIGTERM)
    argparse.ArgumentParser.error = _usage_error
    if main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        done = main(argv)
        # A script's own run (its main in __main__, not a caller's in-process one), its work done and said: a Ctrl-C
        # now (its last moments, interpreter shutdown included) would exit -2 silently with everything written.
        if argv is None and main_thread and getattr(main, "__module__", None) == "__main__":
            _ignore_late_signals()
        pause_here("cli:done")  # tests signal the process here
        return done
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        if after_error is not None:
            after_error(e)
        sys.exit(2)
    except OSError as e:  # a full or read-only disk, a name too long...: never a traceback
        print(f"error: {os_error_line(e, 'cannot read or write')}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:  # its text, where it has one, says exactly what was kept (a forced retrain's)
        print(f"interrupted: {e.args[0] if e.args and isinstance(e.args[0], str) else interrupted}", file=sys.stderr)
        sys.exit(130)
    finally:
        argparse.ArgumentParser.error = previous[0]
        if main_thread and signal.getsignal(signal.SIGTERM) is _terminate:
            signal.signal(signal.SIGTERM, previous[1])


def _ignore_late_signals():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


_PAUSED = set()


def pause_here(point):
    """Test hook: with DEEPDANCE_TEST_PAUSE=<point>:<file> set, reaching `point` creates <file> and waits until it is
    removed (or a signal ends the process). Tests interrupt work at a known point instead of racing it. Costs one
    environment lookup when unset."""
    name, _, marker = os.environ.get("DEEPDANCE_TEST_PAUSE", "").rpartition(":")
    if name != point or not marker or marker in _PAUSED:
        return
    _PAUSED.add(marker)  # once per marker file: the test lets the work go on after looking
    Path(marker).write_text(str(os.getpid()))
    while Path(marker).exists():
        time.sleep(0.01)


def parse_bool(text):
    """Parse the reference CLI's booleans ('True', 'false', '1', 'no', ...)."""
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "t"):
        return True
    if t in ("0", "false", "no", "n", "f"):
        return False
    raise UserError(f"expected true/false, got {text!r}")
