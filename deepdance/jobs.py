"""The web app's long tasks (a run, adding a target), each in a thread of its own with its progress, a way to cancel
it and its outcome in one line, kept under an unguessable id so a reloaded tab finds it again. No Streamlit here.
"""

import secrets
import sys
import threading
import traceback

from deepdance.cli import UserError, pause_here

KEEP_JOBS = 16  # jobs kept for a reloaded tab to find again (each done run holds its video: a few MB)


class Cancelled(Exception):
    """Raised in a job's thread at its next progress report once the user pressed Cancel."""


class Job:
    """One long task of a session (a run, adding a target) in a thread of its own.

    Streamlit stops the script run of a session whenever the page reruns (a widget changed, a rerun asked for):
    work done inside it was cancelled silently by any click. The page only shows a job's progress; reruns leave
    the work alone. work(progress) -> result; progress(fraction, text) raises Cancelled once cancel() was called.

    A started job is also kept under its id (an unguessable token) with the KEEP_JOBS latest: a reloaded tab is a new
    session, which finds its job again by the id in its address (Job.find), running or done.
    """

    _started = {}  # id -> Job, oldest first: shared by the sessions (threads of one process)
    _started_lock = threading.Lock()

    def __init__(self, kind, what, work, *, origin=None):
        self.kind, self.what, self._work = kind, what, work
        self.origin = origin or kind  # what started it: "run", "target" (Add a target) or "framing" (side panel)
        self.id = secrets.token_urlsafe(12)
        self.result = self.error = None
        self.cancelled = False
        self.finished = threading.Event()  # set when the work returned or failed (tests wait on it)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._state = (0.0, "starting")
        self._thread = threading.Thread(target=self._main, name=f"deepdance-{kind}", daemon=True)

    def start(self):
        with Job._started_lock:
            Job._started[self.id] = self
            for old in list(Job._started)[:-KEEP_JOBS]:  # bounded: a done run holds its video
                del Job._started[old]
        self._thread.start()
        return self

    @staticmethod
    def find(job_id):
        """The job started under this id, if still kept (running, or done: its result), else None."""
        with Job._started_lock:
            return Job._started.get(str(job_id))

    def progress(self, fraction, text):
        if self._cancel.is_set():
            raise Cancelled
        with self._lock:
            self._state = (min(1.0, max(0.0, float(fraction))), text)

    def state(self):
        with self._lock:
            return self._state

    def cancel(self):
        self._cancel.set()

    def _main(self):
        try:
            pause_here("app-job")  # tests hold a job here to look at the page while it runs
            self.result = self._work(self.progress)
        except Cancelled:
            self.cancelled, self.error = True, "cancelled"
        except UserError as e:
            self.error = str(e)
        except OSError as e:  # a full or read-only disk, a video that went away mid-run
            self.error = f"{e.strerror or type(e).__name__}{f': {e.filename}' if e.filename else ''}"
        except Exception as e:  # a bug: one line in the page, the traceback in the server's log
            traceback.print_exc(file=sys.stderr)
            self.error = f"unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        finally:
            self.finished.set()
