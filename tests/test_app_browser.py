"""app.py end to end in a real browser: serve it, drive headless Chromium, run the sample transfer, see the video.

Needs Debian's `chromium` and `chromium-driver` packages and selenium; skips cleanly without them.
DEEPDANCE_SCREENSHOT=docs/app.png also writes the README's screenshot (small: < 150 KB).
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

import pytest
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
WINDOW = (1280, 900)  # px: the screenshot's viewport
SERVER_TIMEOUT = 60  # s until the server answers its health check
PAGE_TIMEOUT = 120  # s until the page is ready (first render loads the target and lists the generators)
RUN_TIMEOUT = 180  # s for the sample transfer, from the click to a playable video
SCREENSHOT = os.environ.get("DEEPDANCE_SCREENSHOT")  # e.g. docs/app.png (relative to the project root)
SCREENSHOT_WIDTH = 1024  # px
SCREENSHOT_MAX_BYTES = 150_000

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (apt-get install ...)"
)


def free_port():
    """A TCP port nobody listens on right now, on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(sample_vs, tmp_path):
    """`streamlit run app.py` on a free loopback port, with this run's data dir (the sample target extracted)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    log = open(tmp_path / "server.log", "wb")
    # Its own process group: MediaPipe workers started by a run end with it.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium through chromedriver (both Debian's: their versions match); always closed."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    # Explicit paths: selenium then has nothing to look up or download.
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        driver.set_page_load_timeout(PAGE_TIMEOUT)
        driver.set_script_timeout(60)
        yield driver
    finally:
        driver.quit()


def wait_for(driver, what, timeout, message):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(what, message)


def button(driver, text):
    """The enabled button showing `text`, or False."""
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.XPATH, f"//button[.//p[normalize-space()='{text}']]")
    return found[0] if found and found[0].is_enabled() else False


def small_png(png, width=SCREENSHOT_WIDTH, max_bytes=SCREENSHOT_MAX_BYTES):
    """A screenshot made README-sized: resized to `width`, then palette colours until it fits in max_bytes."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    for colors in (256, 128, 64, 32):
        out = io.BytesIO()
        img.quantize(colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
        if out.tell() <= max_bytes:
            return out.getvalue()
    raise AssertionError(f"the screenshot does not fit in {max_bytes} bytes even with 32 colours")


@pytest.mark.slow
def test_sample_transfer_in_a_real_browser(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server)
    run = wait_for(browser, lambda d: button(d, "Run"), PAGE_TIMEOUT, "the Run button never became clickable")
    assert "DeepDance" in browser.title
    run.click()
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
    assert browser.find_elements(By.CSS_SELECTOR, '[data-testid="stDownloadButton"]')
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')

    png = browser.get_screenshot_as_png()
    (tmp_path / "app.png").write_bytes(png)
    if SCREENSHOT:
        small = small_png(png)
        out = Path(SCREENSHOT) if Path(SCREENSHOT).is_absolute() else ROOT / SCREENSHOT
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(small)
        assert out.stat().st_size <= SCREENSHOT_MAX_BYTES
