"""app.py end to end in a real browser: serve it, drive headless Chromium as a user would.

At a 1366x768 laptop window: the Run button is in view without scrolling (also with "upload a video" chosen), a file
over 200 MB is explained in the page, the settings lock while a run is going, the sample transfer plays, its still
strip and its download are under it; a run in the "source | generated" view gives a video of two panels, in view
after Run, and its strip in that layout. At a phone-width window: Run is in view and not covered by the side panel.
Needs Debian's `chromium` and `chromium-driver` packages and selenium; skips cleanly without them.
DEEPDANCE_SCREENSHOT=docs/app.png also writes the README's screenshot (the 1366x768 window after the run, < 300 KB).
"""

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import app
from deepdance import uploads

import pytest

from apppage import off_range_clip
from conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
# The flags the project's CI uses: headless, no sandbox (containers, root), and nothing that calls home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
)
LAPTOP = (1366, 768)  # px: a common laptop screen; the page's viewport is that minus the browser's own bars
PHONE = (390, 844)  # px: a phone held upright
SERVER_TIMEOUT = 60  # s until the server answers its health check
PAGE_TIMEOUT = 120  # s until the page is ready (first render loads the target and lists the generators)
RUN_TIMEOUT = 180  # s for the sample transfer, from the click to a playable video
SCREENSHOT = os.environ.get("DEEPDANCE_SCREENSHOT")  # e.g. docs/app.png (relative to the project root)
SCREENSHOT_MAX_BYTES = 300_000
SIDE_FILE_INPUT = '[data-testid="stSidebar"] input[type=file]'

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (apt-get install ...)"
    ),
]


def free_port():
    """A TCP port nobody listens on right now, on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def pause_marker(tmp_path):
    """The server's jobs wait at their start while this file exists (Skeleton.pause_here): a test hook."""
    return tmp_path / "job-paused"


@pytest.fixture
def server(sample_vs, tmp_path, pause_marker):
    """`streamlit run app.py` on a free loopback port, with this run's data dir (the sample target extracted)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    env = {**os.environ, "DEEPDANCE_TEST_PAUSE": f"app-job:{pause_marker}"}
    log = open(tmp_path / "server.log", "wb")
    # Its own process group: MediaPipe workers started by a run end with it.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            log_text = (tmp_path / "server.log").read_text
            assert time.monotonic() < deadline, "streamlit did not answer in time:\n" + log_text()
            time.sleep(0.3)
        yield url
    finally:
        pause_marker.unlink(missing_ok=True)  # a job held at its start ends with the server, not after it
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


def open_browser(tmp_path, window):
    """Headless Chromium through chromedriver (both Debian's: their versions match), at a window size."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tmp_path / f"profile-{window[0]}"
    for flag in (*CHROMIUM_FLAGS, f"--window-size={window[0]},{window[1]}", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    # Explicit paths: selenium then has nothing to look up or download.
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_window_size(*window)  # the flag alone stops at Chromium's smallest window width (500 px)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture
def laptop(tmp_path):
    driver = open_browser(tmp_path, LAPTOP)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def phone(tmp_path):
    driver = open_browser(tmp_path, PHONE)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, what, timeout, message):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.3).until(what, message)


def find_button(driver, text):
    """The button showing `text` (enabled or not), or None."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.XPATH, f"//button[.//p[normalize-space()='{text}']]")
    return found[0] if found else None


def enabled_button(driver, text):
    """The enabled button showing `text`, or False (for wait_for)."""
    b = find_button(driver, text)
    return b if b is not None and b.is_enabled() else False


# Whether an element can be seen without scrolling: its whole box inside the window, and the topmost thing at its
# centre is the element itself (not the side panel, a header or anything else laid over it).
IN_VIEW = """
const e = arguments[0], r = e.getBoundingClientRect();
const inside = r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth
               && r.width > 0 && r.height > 0;
const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
return {inside: inside, onTop: !!top && (top === e || e.contains(top)), rect: [r.left, r.top, r.right, r.bottom],
        window: [window.innerWidth, window.innerHeight]};
"""


def assert_in_view(driver, element, what):
    seen = driver.execute_script(IN_VIEW, element)
    assert seen["inside"] and seen["onTop"], f"{what} is not in view without scrolling: {seen}"


def run_button_in_view(driver, what):
    assert_in_view(driver, find_button(driver, "Run"), f"the Run button ({what})")


def choose(driver, option):
    """Click a radio option by its text, once it can be clicked (a side panel sliding in is not there yet)."""
    from selenium.webdriver.common.by import By

    def ready(d):
        found = d.find_elements(By.XPATH, f"//label[@data-testid='stRadioOption'][normalize-space()='{option}']")
        if not found:
            return False
        seen = d.execute_script(IN_VIEW, found[0])
        if not seen["inside"]:  # below the side panel's fold: scroll it there, as a user would
            d.execute_script("arguments[0].scrollIntoView({block: 'center'})", found[0])
            seen = d.execute_script(IN_VIEW, found[0])
        return found[0] if seen["inside"] and seen["onTop"] else False

    wait_for(driver, ready, PAGE_TIMEOUT, f"the option {option!r} never became clickable").click()


def texts_shown(driver):
    """The page's visible text."""
    return driver.find_element("tag name", "body").text


def small_png(png, max_bytes=SCREENSHOT_MAX_BYTES):
    """A screenshot made README-sized at its own size (sharp text): palette colours until it fits in max_bytes."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    for colors in (256, 128, 64, 32):
        out = io.BytesIO()
        img.quantize(colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
        if out.tell() <= max_bytes:
            return out.getvalue()
    raise AssertionError(f"the screenshot does not fit in {max_bytes} bytes even with 32 colours")


# The result's still strip, found by its caption: its picture's own size once loaded, else null.
STILL_STRIP = """
const boxes = [...document.querySelectorAll('[data-testid="stImage"]')]
  .filter(e => e.textContent.includes('frames of the result'));
if (boxes.length !== 1) return null;
const img = boxes[0].querySelector('img');
return img && img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;
"""

# The result video's own size, once its metadata is loaded.
VIDEO_SIZE = """
const done = arguments[arguments.length - 1], v = document.querySelector('video');
const report = () => done([v.videoWidth, v.videoHeight]);
if (v.readyState >= 1) report(); else v.addEventListener('loadedmetadata', report, {once: true});
"""


def still_strip(driver, what):
    """The still strip under the result video: its (width, height) in px, and its download button in the page."""
    size = wait_for(driver, lambda d: d.execute_script(STILL_STRIP), PAGE_TIMEOUT, f"no still strip ({what})")
    assert find_button(driver, "Download the stills (PNG)") is not None, f"no download of the still strip ({what})"
    return tuple(size)


def wait_for_file(path, timeout=PAGE_TIMEOUT):
    """Poll until `path` exists (a job reached its pause point); generous bound, no fixed sleep."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared: the job did not start"
        time.sleep(0.05)


def test_laptop_run_in_view_big_upload_explained_settings_locked_video_plays(laptop, server, pause_marker, tmp_path):
    from selenium.webdriver.common.by import By

    browser = laptop
    browser.get(server)
    wait_for(browser, lambda d: enabled_button(d, "Run"), PAGE_TIMEOUT, "the Run button never became clickable")
    assert "DeepDance" in browser.title
    run_button_in_view(browser, "on first load")
    # The preview: the target's and the source's frames with their skeletons, before any run.
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, '[data-testid="stImage"]')) >= 2, PAGE_TIMEOUT,
             "no preview of the target and the source")  # fmt: skip

    # "upload a video": the uploader takes room in the side panel; Run stays in view.
    choose(browser, app.SOURCE_KINDS[3])
    uploader = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, SIDE_FILE_INPUT), PAGE_TIMEOUT,
                        "no file uploader")[0]  # fmt: skip
    run_button_in_view(browser, "with 'upload a video' chosen")
    # A file over 200 MB (sparse: no disk used) is refused by the browser itself; the page explains it in words.
    big = tmp_path / "wedding.mp4"
    with open(big, "wb") as f:
        f.truncate((uploads.MAX_UPLOAD_MB + 1) * 2**20)
    uploader.send_keys(str(big))
    wait_for(browser, lambda d: "wedding.mp4" in texts_shown(d), PAGE_TIMEOUT, "the refused file is not shown")
    shown = texts_shown(browser)
    assert "A bigger file is refused by the browser before it is sent" in shown and not enabled_button(browser, "Run")
    run_button_in_view(browser, "after a refused upload")

    # Back to the sample source; Run; while it runs (held at its start by the test hook) the settings are locked.
    choose(browser, app.SOURCE_KINDS[0])
    wait_for(browser, lambda d: enabled_button(d, "Run"), PAGE_TIMEOUT, "Run not clickable with the sample source")
    pause_marker.parent.mkdir(parents=True, exist_ok=True)
    enabled_button(browser, "Run").click()
    wait_for_file(pause_marker)
    wait_for(browser, lambda d: find_button(d, "Cancel"), PAGE_TIMEOUT, "no Cancel button while running")
    assert "Running: the built-in sample source onto built-in sample target" in texts_shown(browser)
    assert "The settings are locked until it ends" in texts_shown(browser)
    assert not find_button(browser, "Run").is_enabled()
    side = browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]')
    inputs = side.find_elements(By.CSS_SELECTOR, "input")
    assert inputs and all(not i.is_enabled() for i in inputs), [i.get_attribute("outerHTML")[:80] for i in inputs]
    browser.save_screenshot(str(tmp_path / "running.png"))
    pause_marker.unlink()

    wait_for(browser, lambda d: d.find_elements(By.TAG_NAME, "video"), RUN_TIMEOUT, "no video after Run")
    # Playable: Chromium decodes the H.264 (seek to a frame; its size and duration come from the stream itself).
    state = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const v = document.querySelector('video');
        const report = () => done({ready: v.readyState, w: v.videoWidth, h: v.videoHeight,
                                   duration: v.duration, error: v.error ? v.error.code : null});
        v.addEventListener('error', report, {once: true});
        const seek = () => { v.addEventListener('seeked', report, {once: true}); v.currentTime = 6.0; };
        if (v.readyState >= 1) seek(); else v.addEventListener('loadedmetadata', seek, {once: true});
        """
    )
    assert state["error"] is None and state["ready"] >= 2, state
    assert (state["w"], state["h"]) == (768, 256), state  # three 256 px panels
    assert state["duration"] == pytest.approx(400 / 25, abs=0.2), state  # the whole sample source, 16 s
    wait_for(browser, lambda d: enabled_button(d, "Run"), PAGE_TIMEOUT, "the settings stayed locked after the run")
    assert all(i.is_enabled() for i in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebar"] input'))
    download = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDownloadButton"]')
    assert download and not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    # After the run, at this size: Run, the whole video and its download button without scrolling.
    run_button_in_view(browser, "after the run")
    assert_in_view(browser, browser.find_element(By.TAG_NAME, "video"), "the result video")
    assert_in_view(browser, download[0], "the download button")
    # Under the video: the still strip in the run's view (three panels: 3 frames one above the other).
    assert still_strip(browser, "three panels") == (768, 3 * 256)
    assert_in_view(browser, browser.find_element(By.TAG_NAME, "video"), "the result video, its strip below it")
    screenshot(browser, tmp_path / "app.png")


def screenshot(browser, path):
    """The window as a user sees it after the run, to `path`; also to DEEPDANCE_SCREENSHOT (the README's picture)."""
    # The side panel from its top for the picture (a user who scrolled it would see the same page).
    browser.execute_script(
        "document.querySelectorAll('[data-testid=\"stSidebar\"] *').forEach(e => { e.scrollTop = 0; });"
    )
    png = browser.get_screenshot_as_png()
    path.write_bytes(png)
    if SCREENSHOT:
        small = small_png(png)
        out = Path(SCREENSHOT) if Path(SCREENSHOT).is_absolute() else ROOT / SCREENSHOT
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")  # atomic: a reader never sees half a PNG
        tmp.write_bytes(small)
        os.replace(tmp, out)
        assert out.stat().st_size <= SCREENSHOT_MAX_BYTES


def test_phone_run_in_view_and_not_under_the_side_panel(phone, server, tmp_path):
    from selenium.webdriver.common.by import By

    browser = phone
    browser.get(server)
    wait_for(browser, lambda d: enabled_button(d, "Run"), PAGE_TIMEOUT, "the Run button never became clickable")
    assert browser.execute_script("return window.innerWidth") == PHONE[0]
    run_button_in_view(browser, "on a phone")
    # The settings live in the side panel, closed on a phone: open it, pick "upload a video", close it.
    browser.find_element(By.CSS_SELECTOR, '[data-testid="stExpandSidebarButton"]').click()
    sidebar = browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]')
    wait_for(browser, lambda d: sidebar.get_attribute("aria-expanded") == "true", PAGE_TIMEOUT, "no side panel")
    choose(browser, app.SOURCE_KINDS[3])
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, SIDE_FILE_INPUT), PAGE_TIMEOUT, "no file uploader")
    browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebarCollapseButton"] button').click()
    wait_for(browser, lambda d: sidebar.get_attribute("aria-expanded") == "false", PAGE_TIMEOUT, "side panel stays")
    wait_for(browser, lambda d: d.execute_script(IN_VIEW, find_button(d, "Run"))["onTop"], PAGE_TIMEOUT,
             "the side panel still covers Run")  # fmt: skip
    run_button_in_view(browser, "on a phone, with 'upload a video' chosen")
    assert "upload a video (MP4/MOV, WebM/MKV, AVI or MPEG) in the side panel: up to 200 MB" in texts_shown(browser)
    browser.save_screenshot(str(tmp_path / "phone.png"))


def test_laptop_result_in_view_after_a_run_with_coverage_warnings(laptop, server, pause_marker, tmp_path):
    """A source of poses the target never made (as real footage has): the warnings are one collapsed summary under
    the video, and the video is in view after Run without scrolling."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    clip = off_range_clip(tmp_path / "star_jumps.mp4")
    browser = laptop
    browser.get(server)
    wait_for(browser, lambda d: enabled_button(d, "Run"), PAGE_TIMEOUT, "the Run button never became clickable")
    choose(browser, app.SOURCE_KINDS[2])
    typed = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, 'input[aria-label="Video path"]'),
                     PAGE_TIMEOUT, "no path field")[0]  # fmt: skip
    typed.send_keys(str(clip), Keys.ENTER)
    wait_for(browser, lambda d: "star_jumps.mp4: 100 frames" in texts_shown(d), PAGE_TIMEOUT, "the path is not taken")
    choose(browser, app.VIEW_LABELS["side"])  # watched side by side: the source as filmed | generated
    wait_for(browser, lambda d: "| view: source | generated" in texts_shown(d), PAGE_TIMEOUT, "the view is not taken")
    wait_for(browser, lambda d: enabled_button(d, "Run"), PAGE_TIMEOUT, "Run not clickable with the typed path")
    enabled_button(browser, "Run").click()
    wait_for_file(pause_marker)  # the server's jobs wait at their start for the test: let this one go
    pause_marker.unlink()
    video = wait_for(browser, lambda d: d.find_elements(By.TAG_NAME, "video"), RUN_TIMEOUT, "no video after Run")[0]
    wait_for(browser, lambda d: enabled_button(d, "Run"), PAGE_TIMEOUT, "the settings stayed locked after the run")
    browser.save_screenshot(str(tmp_path / "coverage.png"))
    run_button_in_view(browser, "after a run with coverage warnings")
    assert_in_view(browser, video, "the result video, after a run with coverage warnings")
    assert browser.execute_async_script(VIDEO_SIZE) == [2 * 256, 256]  # two panels: source | generated
    assert still_strip(browser, "source | generated") == (2 * 256, 3 * 256)
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentWarning"]')  # no yellow boxes
    summary = [e for e in browser.find_elements(By.CSS_SELECTOR, '[data-testid="stExpander"] summary')
               if "coverage warning" in e.text]  # fmt: skip
    assert len(summary) == 1, [e.text for e in browser.find_elements(By.CSS_SELECTOR, "summary")]
    assert summary[0].find_element(By.XPATH, "..").get_attribute("open") is None  # collapsed
    assert "the target never stood" not in texts_shown(browser)  # the list is inside, out of the way
