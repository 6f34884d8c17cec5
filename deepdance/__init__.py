"""DeepDance's machinery: everything the scripts at the top of the repository share.

Importing any part of the package runs this first, so the two settings below take effect before torch, OpenCV or
MediaPipe load their native libraries (they read them once, at load).
"""

import os

# FFmpeg (inside OpenCV) prints its own lines for unreadable files; the scripts report those in one line themselves.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
