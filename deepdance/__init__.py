"""DeepDance's machinery: everything the scripts at the top of the repository share.

Importing any part of the package runs this first, so the settings below take effect before torch, OpenCV or
MediaPipe load their native libraries (they read them once, at load).
"""

import os

# On a shared CPU, OpenMP threads that spin-wait for a descheduled sibling slow 2-thread training several times over
# (docs/training.md); passive waiting yields the core instead. OMP_WAIT_POLICY in the environment overrides it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# FFmpeg (inside OpenCV) prints its own lines for unreadable files; the scripts report those in one line themselves.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# OpenCV's own log, apart from FFmpeg's: its WARN lines (a stream's read timeout, "Stream timeout triggered after
# 5023 ms") would reach the terminal beside the scripts' one-line report of the same thing. Errors still show.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
