"""The extraction's worker pool and its cache lock: a signal to the process alone as the pool
starts, and no empty `.lock` files left in data/cache/.

A signal reaches the process at a known point of the pool's start-up through the test hook (DEEPDANCE_TEST_PAUSE),
once the kernel has handed it over, never by racing it; the lock's waits are events, not timers.
"""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from deepdance import cache, files
from deepdance.cli import INTERRUPTED

import numpy as np
import pytest
from test_reliability import terminal_lines

from conftest import ROOT, write_video

SAFETY_S = 300  # a generous bound on a wait that should end at once: only a hang reaches it

# --------------------------------------------------------------------------- 5: a signal as the pool starts

# VideoSkeleton.py's command line, held by the test hook inside the standard library's pool start-up: the first
# worker process spawned (still importing), the pool's manager thread made but not started. A signal there used to
# leave the executor unable to shut down ("RuntimeError: cannot join thread before it is started"), or a worker
# printing an EOFError, or a hang.
HELD_POOL = (
    "import sys; sys.path.insert(0, sys.argv[1])\n"
    "from concurrent.futures import process\n"
    "from deepdance.cli import pause_here, run_cli\n"
    "start = process._ExecutorManagerThread.start\n"
    "def held(self):\n"
    "    pause_here('pool:manager')\n"
    "    start(self)\n"
    "process._ExecutorManagerThread.start = held\n"
    "import VideoSkeleton\n"
    "run_cli(VideoSkeleton.main, sys.argv[2:])\n"
)


def _threads_status(pid):
    """{field: value} of /proc's status for the process and each of its threads."""
    paths = [Path(f"/proc/{pid}/status")] + sorted(Path(f"/proc/{pid}/task").glob("*/status"))
    return [dict(line.split(":\t", 1) for line in p.read_text().splitlines() if ":\t" in line) for p in paths]


def wait_taken(pid, sig):
    """Until the kernel has handed `sig` to the process (no longer pending), or no thread of it can take it (every
    one blocks it: it waits for one to unblock it, which the held process cannot do): a state, polled."""
    bit = 1 << (sig - 1)
    for _ in range(SAFETY_S * 100):
        status = _threads_status(pid)
        pending = any(int(s.get(k, "0"), 16) & bit for s in status for k in ("SigPnd", "ShdPnd"))
        if not pending or all(int(s["SigBlk"], 16) & bit for s in status[1:]):
            return
        threading.Event().wait(0.01)
    pytest.fail(f"signal {sig} still pending after {SAFETY_S} s")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads signal states in /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["kill", "kill-INT"])
def test_a_signal_to_the_process_as_the_pool_starts_is_one_line(tmp_path, sig):
    """`kill <pid>` / `kill -INT <pid>` while the pool is half built: one line, exit 130, nothing left in the cache
    (no part of one, no temporary, no lock), the workers gone (their output pipes close), no hang."""
    frames = [np.full((64, 64, 3), (7 * i) % 256, np.uint8) for i in range(2 * cache.MIN_FRAMES_PER_WORKER)]
    clip = write_video(tmp_path / "clip.mp4", frames)  # enough frames for two workers
    data, marker = tmp_path / "data", tmp_path / "held"
    env = {**os.environ, "DEEPDANCE_DATA": str(data), "OMP_NUM_THREADS": "1",
           "DEEPDANCE_TEST_PAUSE": f"pool:manager:{marker}"}  # fmt: skip
    cmd = [sys.executable, "-c", HELD_POOL, str(ROOT), str(clip), "true", "1", "--workers", "2"]
    # Ctrl-C as a terminal delivers it, whatever this process inherited (a background CI job ignores SIGINT).
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        for _ in range(SAFETY_S * 50):  # the hook's marker: a state, polled (bounded: a hang fails, not blocks)
            if marker.exists():
                break
            assert proc.poll() is None, proc.communicate()
            threading.Event().wait(0.02)
        else:
            pytest.fail(f"the pool never reached its start-up pause within {SAFETY_S} s")
        os.kill(proc.pid, sig)  # the process alone, as `kill` does; the group's Ctrl-C reaches the workers too
        wait_taken(proc.pid, sig)
        marker.unlink()  # the start-up goes on; the signal must wait for it
        _, err = proc.communicate(timeout=SAFETY_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    assert proc.returncode == 130 and "Traceback" not in err and "Error" not in err, err
    assert terminal_lines(err) == [f"interrupted: {INTERRUPTED}"], err  # the progress bar redraws in place
    left = sorted(p.name for p in (data / "cache").iterdir()) if (data / "cache").exists() else []
    assert left == [], left


# --------------------------------------------------------------------------- no lock file left


def test_a_cache_built_or_read_leaves_no_lock_file(short_clip):
    """The cache's build lock is taken to read a cache as well as to build one: neither leaves its file behind, and
    one a killed extraction left (SIGKILL cannot remove it) goes with the next look at the caches; one held stays."""
    stale = cache.CACHE_DIR / ".killed-0123456789.lock"
    cache.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    stale.touch()  # its holder was killed outright: nobody holds it
    with files.lock_file(cache.CACHE_DIR / ".busy-0123456789.lock"):  # another extraction's, in use
        for _ in range(2):  # built (or read, if another test built it first), then read
            vs = cache.VideoSkeleton(short_clip, verbose=False)
            assert sorted(p.name for p in cache.CACHE_DIR.glob(".*.lock")) == [".busy-0123456789.lock"]
    assert vs.cache_dir.parent == cache.CACHE_DIR and not list(cache.CACHE_DIR.glob(".*.lock"))


def test_a_removed_lock_file_still_keeps_two_holders_apart(tmp_path):
    """The holder removes the lock's file as it lets go, while a second locker waits on that file: the second must
    not count a lock on the removed file as the lock, or a third, finding no file, would hold a new one meanwhile.

    Threads, each its own open file (flock excludes those as it does processes); every step waits for an event."""
    path = tmp_path / ".x.lock"
    holders, most = [], []  # who holds the lock now; how many held it at once, at each entry
    entered = {name: threading.Event() for name in ("first", "second", "third")}
    waits = {name: threading.Event() for name in ("second", "third")}
    leave = {name: threading.Event() for name in ("first", "second", "third")}
    leave["third"].set()

    def hold(name):
        def on_wait():
            waits[name].set()
            if name == "third":  # the test's wait for the third ends whether it waits (right) or gets in (wrong)
                entered[name].set()

        with files.lock_file(path, on_wait=on_wait if name in waits else None):
            holders.append(name)
            most.append(len(holders))
            entered[name].set()
            assert leave[name].wait(SAFETY_S)
            holders.remove(name)

    threads = {name: threading.Thread(target=hold, args=(name,), daemon=True) for name in entered}
    try:
        threads["first"].start()
        assert entered["first"].wait(SAFETY_S)
        threads["second"].start()
        assert waits["second"].wait(SAFETY_S)  # it has the first's file open and waits on it
        leave["first"].set()  # the first lets go, removing that file
        assert entered["second"].wait(SAFETY_S)  # the second holds the lock now, on the file its name leads to
        assert path.exists()
        threads["third"].start()
        assert entered["third"].wait(SAFETY_S)  # it waits, or (wrongly) got in
        assert waits["third"].is_set() and holders == ["second"], "a third locker got in while the second held it"
    finally:
        for event in leave.values():  # whatever failed above: no thread left waiting
            event.set()
    for t in threads.values():
        t.join(SAFETY_S)
        assert not t.is_alive()
    assert max(most) == 1 and not path.exists()
