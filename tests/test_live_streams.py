"""A network stream that stalls or closes part-way is said to have stopped, as an MJPEG stream
already was, whatever its format: a fragmented MP4 (which declares only the fragments FFmpeg read while opening it)
no longer ends as a success; OpenCV's own WARN lines stay off the terminal.

The streams are served from a thread of this process (bench/streams.py) and stop at a known byte: closed there, or
stalled until the test ends. Nothing is timed: a stall ends when the reader's read timeout gives up on it.
"""

from deepdance import capture

import pytest
from test_live import LAST_LINE, FakeCapture, FakeClock

from bench import streams
from conftest import read_video, run_script

N_FRAMES = 100  # frames in the stream; every one of them stops at half its bytes


class StallingCapture(FakeCapture):
    """FakeCapture whose read after the last frame fails only once it has waited out the read timeout, as FFmpeg's
    does on a stream that sends nothing more."""

    def read(self):
        if self.i >= self.n:
            self.clock.t += capture.OPEN_TIMEOUT_S
        return super().read()


@pytest.mark.parametrize(
    "declared, sent, stalls, stopped",
    [
        (40, 40, False, False),  # a whole clip at a URL: it ends where its length said
        (40, 39, False, False),  # a frame short: a container's length may be off by one
        (400, 123, False, True),  # cut short
        (0, 40, False, True),  # MJPEG: no length declared, so no end is normal
        (30, 40, False, True),  # a fragmented MP4: its declared length, a guess, outrun
        (40, 40, True, True),  # ended by a stall, not at the end of the file
    ],
    ids=["whole", "one-short", "cut", "mjpeg", "fragmented", "stalled"],
)
def test_a_url_ends_normally_only_where_its_declared_length_ends(declared, sent, stalls, stopped):
    clock = FakeClock()
    slot = capture.LatestFrame()
    cap = (StallingCapture if stalls else FakeCapture)(sent, clock=clock)
    reader = capture.Reader(cap, slot, name="http://cam/x", kind="url", expected=declared, clock=clock)
    reader.run()
    assert reader.n == sent
    assert slot.error == (f"http://cam/x stopped sending frames after {sent} frames" if stopped else None)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["fmp4", "mjpeg"])
@pytest.mark.parametrize("end", ["close", "stall"])
def test_a_stream_that_stops_half_way_is_a_stop_in_every_format(fmt, end):
    """The reader over a real HTTP stream: the frames before the cut arrive, then the same stop in both formats."""
    with streams.stream(fmt, streams.moving_frames(N_FRAMES), cut=0.5, end=end) as url:
        cap, first, _, name, _, declared = capture.open_source("url", url)
        slot = capture.LatestFrame()
        reader = capture.Reader(cap, slot, name=name, kind="url", first=first, expected=declared)
        reader.run()  # in this thread: it returns when the stream has closed, or its read timeout has given up
        cap.release()
    assert 0 < reader.n < N_FRAMES
    assert slot.error == f"{url} stopped sending frames after {reader.n} frames"


@pytest.mark.slow
@pytest.mark.parametrize("fmt, end", [("fmp4", "close"), ("fmp4", "stall"), ("mjpeg", "stall")])
def test_live_from_a_stream_that_stops_says_so_and_keeps_the_recording(fmt, end, short_clip, tmp_path):
    """DanceDemo.py --live as a user runs it: one `error:` line saying the stream stopped and where the recording
    is (exit 2, as for an MJPEG stream or a camera), no OpenCV WARN line, the recording playable."""
    from deepdance.cache import VideoSkeleton

    VideoSkeleton(short_clip, verbose=False)  # the target's cache, shared with the script through DEEPDANCE_DATA
    out = tmp_path / "live.mp4"
    with streams.stream(fmt, streams.moving_frames(N_FRAMES), cut=0.5, end=end) as url:
        r = run_script("DanceDemo.py", "--live", "--source", url, "--video_path", short_clip, "--out", out,
                       "--window", "off")  # fmt: skip
    lines = [line for line in r.stderr.replace("\r", "\n").splitlines() if line.strip()]
    m = LAST_LINE.fullmatch(r.stdout.strip().splitlines()[-1])
    assert "WARN" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2 and len(lines) == 1 and m, r.stderr
    frames_in = int(m[1])
    assert 0 < frames_in < N_FRAMES
    assert lines[0] == f"error: {url} stopped sending frames after {frames_in} frames; the recording so far is in {out}"
    video, _ = read_video(out)
    assert len(video) >= 1
