"""A video stream served over HTTP from a thread of this process, that closes or stalls part-way: the network faults
of the live mode (`DanceDemo.py --live --source http://...`), for bench/faults.py and tests/test_live_streams.py.

    with served(fragmented_mp4(frames), cut=0.5, end="stall") as url:   # the first half of the bytes, then nothing
        ...

Two formats a network camera or a phone app sends: a fragmented MP4 (`-movflags frag_keyframe+empty_moov`: a moov
that declares no length, then one fragment per keyframe) and MJPEG (JPEG pictures in a multipart response).
"""

import contextlib
import http.server
import subprocess
import threading

import cv2
import numpy as np

FPS = 25.0
GOP = 10  # frames per fragment of the fragmented MP4 (one keyframe each)


def moving_frames(n, size=(160, 120)):
    """n BGR frames (H, W, 3) uint8: a bright square sweeping across a grey ramp (no person: the live mode shows
    the target at rest, which is all a stream test needs)."""
    w, h = size
    out = []
    for i in range(n):
        f = np.full((h, w, 3), 40 + (3 * i) % 160, np.uint8)
        x = (7 * i) % (w - 24)
        f[h // 3 : h // 3 + 24, x : x + 24] = 255
        out.append(f)
    return out


def fragmented_mp4(frames, fps=FPS):
    """The frames as fragmented-MP4 bytes (H.264, a fragment every GOP frames, nothing said of the length)."""
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt",
           "bgr24", "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g",
           str(GOP), "-movflags", "frag_keyframe+empty_moov", "-f", "mp4", "-"]  # fmt: skip
    raw = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
    return subprocess.run(cmd, input=raw, capture_output=True, check=True, timeout=120).stdout


BOUNDARY = b"frame"


def mjpeg(frames):
    """The frames as the body of a multipart/x-mixed-replace response, one JPEG a part (what IP cameras send)."""
    parts = []
    for f in frames:
        jpeg = cv2.imencode(".jpg", f)[1].tobytes()
        head = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (BOUNDARY, len(jpeg))
        parts.append(head + jpeg + b"\r\n")
    return b"".join(parts)


MULTIPART = f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}"
FORMATS = {"fmp4": ("video/mp4", fragmented_mp4), "mjpeg": (MULTIPART, mjpeg)}  # content type, encoder


@contextlib.contextmanager
def served(body, *, content_type, cut, end):
    """Serve `body` at http://127.0.0.1:<port>/stream from a thread; every response sends its first `cut` share of
    the bytes, then, end="close", closes the connection, or, end="stall", sends nothing more until the block ends.
    Yields the URL. No Content-Length: a live stream says none (a truncated body is then all a client sees)."""
    sent = body[: int(len(body) * cut)]
    released = threading.Event()  # the stalled responses end with the block, not on a timer

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # http.server's name
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Connection", "close")
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may hang up first
                self.wfile.write(sent)
                self.wfile.flush()
                if end == "stall":
                    released.wait()

        def log_message(self, *args):  # no request lines on the terminal
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="stream-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stream"
    finally:
        released.set()
        server.shutdown()
        server.server_close()
        thread.join()


def stream(fmt, frames, *, cut, end):
    """served() for one of FORMATS: stream("fmp4", frames, cut=0.5, end="close")."""
    content_type, encode = FORMATS[fmt]
    return served(encode(frames), content_type=content_type, cut=cut, end=end)
