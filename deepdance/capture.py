"""A live source for Live.py: a camera, a URL or a file played at its own rate, read by a thread that keeps only the
newest frame (frames that arrive while the pipeline is busy are dropped and counted, never queued: latency stays
bounded).

    Reader / LatestFrame    the reading thread and its one-frame slot (drop-newest)
    open_source             a camera index, URL or file opened, with one clear line when it cannot be
    Clock                   time, replaceable by a test's manual clock
"""

import contextlib
import threading
import time
from dataclasses import dataclass

from deepdance.cli import UserError
from deepdance.video import check_video_path, probe_video

import cv2
import numpy as np

OPEN_TIMEOUT_S = 5.0  # s a URL may take to answer (to open, then per read)
CAMERA_FPS = 30.0  # a camera that does not say its frame rate: the rate its recording is written at
END_OF_FILE_SHARE = 0.95  # a URL stream that ends within this share of the frames it declared (either side), and
# not for want of data, ended normally: containers misstate a length by a frame or two


class Clock:
    """Real time, as the reader and the loop see it; tests pass a fake one that they step by hand."""

    now = staticmethod(time.perf_counter)
    sleep = staticmethod(time.sleep)


CLOCK = Clock()


@dataclass(frozen=True)
class Frame:
    """One captured frame."""

    image: np.ndarray  # (H, W, 3) uint8 BGR, as the source sent it
    index: int  # its number among the frames the source sent: its time slot is index / fps
    t: float  # clock time it was captured, s


class LatestFrame:
    """A one-frame mailbox between the reader thread and the loop: put() replaces a frame nobody took (a drop).

    Frames are never queued: a slow pipeline shows the newest frame, so the latency stays bounded.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._frame = None
        self.arrived = self.dropped = self.taken = 0
        self.closed, self.error = False, None

    def put(self, frame):
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.arrived += 1
            self._cond.notify_all()

    def missed(self):
        """A frame the source sent that the reader skipped to keep up with real time: arrived and dropped."""
        with self._cond:
            self.arrived += 1
            self.dropped += 1

    def take(self, timeout=None):
        """The newest frame not taken yet; None once the source has ended (see .error); TimeoutError if none came."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._frame is not None or self.closed, timeout):
                raise TimeoutError
            frame, self._frame = self._frame, None
            if frame is not None:
                self.taken += 1
            return frame

    def discard(self):
        """Drop the frame waiting, if any (after a pause: it is old)."""
        with self._cond:
            if self._frame is not None:
                self._frame = None
                self.dropped += 1

    def close(self, error=None):
        """The source has ended: normally (error None) or with a problem to report."""
        with self._cond:
            self.closed, self.error = True, error
            self._cond.notify_all()

    def counts(self):
        """(arrived, dropped, taken) read together."""
        with self._cond:
            return self.arrived, self.dropped, self.taken


class Reader:
    """Reads the source into a LatestFrame, in a thread of its own (start()) or stepped by hand (step(), tests).

    pace_fps: play a file or URL at its own frame rate as a camera would (a frame is not read before its time, and
    frames whose time has passed by more than a frame are skipped, counted as dropped); None: a camera, which paces
    itself. first: a frame already read from cap (start-up checks), sent first.
    """

    def __init__(
        self,
        cap,
        slot,
        *,
        name,
        kind,
        pace_fps=None,
        first=None,
        expected=0,
        clock=CLOCK,
        read_timeout_s=OPEN_TIMEOUT_S,
    ):
        self.cap, self.slot, self.name, self.kind = cap, slot, name, kind
        self.pace_fps, self.first, self.expected, self.clock = pace_fps, first, int(expected), clock
        self.read_timeout_s = read_timeout_s  # a URL's (open_source's): a read that fails after it waited for data
        self.n = 0  # frames the source has sent (read or skipped)
        self.t0 = None
        self.stalled = False  # the last read failed after waiting out read_timeout_s: the stream stalled
        self._stop = threading.Event()
        self._thread = None

    def step(self):
        """Read one frame into the slot; False at the end of the source."""
        clock = self.clock
        if self.t0 is None:
            self.t0 = clock.now()
        if self.pace_fps:
            late = clock.now() - (self.t0 + self.n / self.pace_fps)
            if late < 0:
                clock.sleep(-late)
            # Behind by whole frame times (a slow decode): a camera would have sent newer frames meanwhile, so
            # those frames are skipped (counted as dropped) and the one due now is read.
            for _ in range(int(late * self.pace_fps)):
                if not self._read(grab=True):
                    return False
                self.slot.missed()
                self.n += 1
        if self.n == 0 and self.first is not None:
            image, self.first = self.first, None
        else:
            image = self._read()
            if image is None:
                return False
        self.slot.put(Frame(image, self.n, clock.now()))
        self.n += 1
        return True

    def _read(self, grab=False):
        """The next frame (True for grab), or None at the source's end; a URL's read that fails only once it has
        waited out the read timeout marks the stream as stalled (FFmpeg gives up on it: no end of file)."""
        t = self.clock.now()
        if grab:
            ok, image = self.cap.grab(), True
        else:
            ok, image = self.cap.read()
        if ok and image is not None:
            return image
        self.stalled = self.kind == "url" and self.clock.now() - t >= self.read_timeout_s
        return None

    def run(self):
        """Read until the source ends or stop(); then close the slot, with the reason when it is a problem."""
        error = None
        try:
            while not self._stop.is_set() and self.step():
                pass
            if not self._stop.is_set():
                error = self.end_problem()
        except Exception as e:  # a device that vanished (cv2.error, OSError...): the loop reports it
            error = f"{self.name} failed after {self.n} frames ({str(e).strip().splitlines()[-1]})"
        self.slot.close(error)

    def end_problem(self):
        """None when the source ended normally (a file, a URL of a whole clip), else what to tell the user.

        A URL of a whole clip ends where its length said, at once: a stall is a stop, and so is an end far from the
        declared length on either side. A fragmented MP4 declares only the fragments FFmpeg read while opening it
        (a guess it then outruns) and MJPEG declares nothing: such a stream has no known end, and its end is a stop,
        said as such, the recording so far kept."""
        declared = self.expected
        whole = (
            self.kind == "url"
            and not self.stalled
            and declared > 0
            and END_OF_FILE_SHARE * declared <= self.n <= declared / END_OF_FILE_SHARE
        )
        if self.kind == "file" or whole:
            return None
        return f"{self.name} stopped sending frames after {self.n} frames"

    def start(self):
        self._thread = threading.Thread(target=self.run, name="live-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=1.0):
        """Ask the thread to stop; True once it has (a camera stuck in read() may not come back: it is a daemon)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True


def parse_source(text):
    """--source -> ("camera", index) | ("url", url) | ("file", resolved Path)."""
    text = str(text).strip()
    if text.isdigit():
        return "camera", int(text)
    if "://" in text:
        return "url", text
    return "file", check_video_path(text)


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV's own WARN/ERROR lines while probing a camera or URL: the failure is reported in one line by us."""
    level = cv2.getLogLevel()
    cv2.setLogLevel(0)  # silent
    try:
        yield
    finally:
        cv2.setLogLevel(level)


def open_source(kind, where, *, open_timeout_s=OPEN_TIMEOUT_S):
    """Open --source and read its first frame: (cap, first frame, fps, name, pace_fps, frames declared).

    A camera that does not open, a URL that does not answer, a file that is not a video: one UserError line.
    """
    if kind == "file":
        n, fps, _, _ = probe_video(where)  # UserError for an image, text, a truncated file...
        cap = cv2.VideoCapture(str(where))
        name = str(where)
    elif kind == "camera":
        name = f"camera {where}"
        with _quiet_opencv():
            cap = cv2.VideoCapture(where)
        if not cap.isOpened():
            raise UserError(
                f"{name} did not open: no such camera, or another program is using it; "
                "try another --source index (0 is the first camera), a URL or a video file"
            )
        n, fps = 0, cap.get(cv2.CAP_PROP_FPS)
    else:
        name = where
        ms = int(open_timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        with _quiet_opencv():
            cap = cv2.VideoCapture(where, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            raise UserError(
                f"the stream {where} did not answer within {open_timeout_s:g} s: check the address and that "
                "the server or camera is running and reachable"
            )
        n, fps = int(max(0, cap.get(cv2.CAP_PROP_FRAME_COUNT))), cap.get(cv2.CAP_PROP_FPS)
    with _quiet_opencv():
        ok, first = cap.read()
    if not ok or first is None:
        cap.release()
        raise UserError(f"{name} opened but sent no frame; check it works in another program")
    fps = float(fps) if fps and 0 < fps < 1000 else CAMERA_FPS
    pace = None if kind == "camera" else fps  # a camera paces itself; a file or URL is played at its frame rate
    return cap, first, fps, name, pace, n
