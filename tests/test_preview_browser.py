"""The preview UI in a real browser: Debian's headless Chromium driven by selenium through
Debian's chromedriver (installed by scripts/services; selenium-manager never downloads).

Screenshots of the list and of a message go to a temporary directory, or to
``$MAILPOST_PREVIEW_SCREENSHOTS`` when set (docs/img holds a copy from one run).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from mailpost.backends.capture import CaptureBackend
from mailpost.preview import CaptureSource, PreviewApp, PreviewServer
from preview_helpers import ATTACHMENT, hostile, newsletter, note

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 15.0

pytestmark = pytest.mark.timeout(180)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``condition`` until it returns something truthy (bounded in time)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def downloads() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mailpost-dl-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[WebDriver]:
    assert os.path.exists(CHROMIUM), "run scripts/services to install Debian's chromium"
    assert os.path.exists(CHROMEDRIVER), "run scripts/services to install chromium-driver"
    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never fetch anything
    profile = tempfile.mkdtemp(prefix="mailpost-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,820",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def screenshots() -> Iterator[Path]:
    target = os.environ.get("MAILPOST_PREVIEW_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        yield Path(target)
        return
    path = Path(tempfile.mkdtemp(prefix="mailpost-shots-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def backend(tmp_path: Path) -> CaptureBackend:
    return CaptureBackend(path=tmp_path / "capture.sqlite3", alias="default")


@pytest.fixture
def server(backend: CaptureBackend) -> Iterator[PreviewServer]:
    with PreviewServer(PreviewApp([CaptureSource(backend.store)]), port=0) as running:
        yield running


def open_ui(browser: WebDriver, server: PreviewServer, count: int) -> list[Any]:
    browser.get(server.url)
    return wait_for(
        lambda: (
            len(items := browser.find_elements(By.CSS_SELECTOR, "#messages li")) == count and items
        ),
        f"{count} messages in the list",
    )


def open_message(browser: WebDriver, subject_part: str) -> None:
    for item in browser.find_elements(By.CSS_SELECTOR, "#messages li"):
        if subject_part in item.find_element(By.CSS_SELECTOR, ".subj").text:
            item.click()
            break
    else:
        raise AssertionError(f"no message with {subject_part!r} in the list")
    wait_for(
        lambda: subject_part in browser.find_element(By.ID, "subject").text, "the message view"
    )


def test_list_shows_captured_messages_newest_first(
    browser: WebDriver, server: PreviewServer, backend: CaptureBackend, screenshots: Path
) -> None:
    backend.send_messages([note("First note")])
    backend.send_messages([newsletter()])
    backend.send_messages([note("Latest note")])
    items = open_ui(browser, server, 3)
    subjects = [i.find_element(By.CSS_SELECTOR, ".subj").text for i in items]
    assert subjects[0].startswith("Latest note")
    assert subjects[1].startswith("Your December report")
    assert subjects[2].startswith("First note")
    assert "reports@example.com" in items[1].text or "Example Reports" in items[1].text
    assert browser.find_element(By.ID, "count").text == "3 messages"
    browser.save_screenshot(str(screenshots / "preview-list.png"))


def test_message_view_renders_html_in_sandboxed_iframe_with_cid_image(
    browser: WebDriver, server: PreviewServer, backend: CaptureBackend, screenshots: Path
) -> None:
    backend.send_messages([note(), newsletter()])
    open_ui(browser, server, 2)
    open_message(browser, "Your December report")
    frame = browser.find_element(By.ID, "frame")
    sandbox = frame.get_attribute("sandbox") or ""
    assert "allow-scripts" not in sandbox
    assert "allow-same-origin" not in sandbox
    wait_for(lambda: "/html" in (frame.get_attribute("src") or ""), "the iframe src")
    browser.switch_to.frame(frame)
    try:
        heading = wait_for(lambda: browser.find_element(By.ID, "greeting"), "the HTML heading")
        assert heading.text == "Hello Ann"
        assert "December report" in browser.find_element(By.ID, "intro").text
        logo = browser.find_element(By.ID, "logo")
        assert (logo.get_attribute("src") or "").startswith("data:image/png;base64,")
        assert (
            wait_for(
                lambda: browser.execute_script(
                    "return arguments[0].complete && arguments[0].naturalWidth", logo
                ),
                "the cid image",
            )
            == 60
        )
        tracker = browser.find_element(By.ID, "tracker")
        assert browser.execute_script("return arguments[0].naturalWidth", tracker) == 0
    finally:
        browser.switch_to.default_content()
    assert browser.find_element(By.ID, "allow-remote").is_displayed()
    browser.save_screenshot(str(screenshots / "preview-message.png"))


def test_allow_remote_images_reloads_the_frame_with_remote_csp(
    browser: WebDriver, server: PreviewServer, backend: CaptureBackend
) -> None:
    backend.send_messages([newsletter()])
    open_ui(browser, server, 1)
    open_message(browser, "Your December report")
    browser.find_element(By.ID, "allow-remote").click()
    frame = browser.find_element(By.ID, "frame")
    src = wait_for(
        lambda: "remote=1" in (s := frame.get_attribute("src") or "") and s, "remote src"
    )
    with urllib.request.urlopen(src, timeout=10) as response:
        assert "img-src cid: data: https: http:" in response.headers["Content-Security-Policy"]
    assert not browser.find_element(By.ID, "allow-remote").is_displayed()


def test_text_headers_raw_and_checks_tabs(
    browser: WebDriver, server: PreviewServer, backend: CaptureBackend
) -> None:
    backend.send_messages([newsletter()])
    open_ui(browser, server, 1)
    open_message(browser, "Your December report")
    browser.find_element(By.ID, "tab-text").click()
    text = browser.find_element(By.ID, "text")
    wait_for(text.is_displayed, "the text pane")
    assert text.text.startswith("Hello Ann,")
    assert "-- The Example team" in text.text
    browser.find_element(By.ID, "tab-headers").click()
    headers = browser.find_element(By.ID, "headers").text
    assert "Subject Your December report" in headers
    assert "List-Unsubscribe" in headers
    browser.find_element(By.ID, "tab-raw").click()
    raw = wait_for(lambda: browser.find_element(By.ID, "raw").text, "the raw source")
    assert "Content-ID: <logo@example.com>" in raw
    browser.find_element(By.ID, "tab-checks").click()
    checks = browser.find_element(By.ID, "checks").text
    assert "bulk" not in checks  # one recipient, not bulk
    assert "No deliverability problems" in checks or "warning" in checks


def test_mobile_width_toggle_narrows_the_frame(
    browser: WebDriver, server: PreviewServer, backend: CaptureBackend
) -> None:
    backend.send_messages([newsletter()])
    open_ui(browser, server, 1)
    open_message(browser, "Your December report")
    frame = browser.find_element(By.ID, "frame")
    assert frame.size["width"] > 600
    browser.find_element(By.ID, "width-mobile").click()
    wait_for(lambda: frame.size["width"] == 375, "the mobile width")
    browser.find_element(By.ID, "width-desktop").click()
    wait_for(lambda: frame.size["width"] > 600, "the desktop width")


def test_attachment_downloads_with_its_exact_bytes(
    browser: WebDriver, server: PreviewServer, backend: CaptureBackend, downloads: Path
) -> None:
    backend.send_messages([newsletter()])
    open_ui(browser, server, 1)
    open_message(browser, "Your December report")
    link = next(
        a
        for a in browser.find_elements(By.CSS_SELECTOR, "#attachments a")
        if a.text.startswith("report.bin")
    )
    href = link.get_attribute("href") or ""
    with urllib.request.urlopen(href, timeout=10) as response:
        assert response.read() == ATTACHMENT
        assert "attachment" in response.headers["Content-Disposition"]
    link.click()
    saved = downloads / "report.bin"
    wait_for(lambda: saved.exists() and saved.stat().st_size == len(ATTACHMENT), "the download")
    assert saved.read_bytes() == ATTACHMENT


def _ui_state(browser: WebDriver) -> list[Any]:
    return list(
        browser.execute_script(
            "return [window.pwned === undefined ? null : window.pwned, document.title,"
            " localStorage.getItem('pwned')]"
        )
    )


def test_script_and_onerror_payloads_run_nothing_in_the_ui_origin(
    browser: WebDriver, server: PreviewServer, backend: CaptureBackend
) -> None:
    backend.send_messages([note(), hostile()])
    open_ui(browser, server, 2)
    assert "hostile subject" in browser.find_element(By.ID, "messages").text
    open_message(browser, "hostile subject")
    assert browser.find_element(By.ID, "subject").text.startswith("<img src=x onerror=")
    frame = browser.find_element(By.ID, "frame")
    browser.switch_to.frame(frame)
    try:
        wait_for(lambda: browser.find_element(By.ID, "payload-heading"), "the payload HTML")
        time.sleep(1.0)  # give an onerror handler every chance to fire
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-ran") is None
        browser.find_element(By.ID, "js-link").click()
    finally:
        browser.switch_to.default_content()
    browser.find_element(By.ID, "tab-text").click()
    assert "<script>" in browser.find_element(By.ID, "text").text
    browser.find_element(By.ID, "tab-headers").click()
    time.sleep(0.5)
    assert _ui_state(browser) == [None, "mailpost preview", None]
    # Opened directly (not in the iframe), the HTML document is still sandboxed by its CSP.
    browser.get(server.url + f"m/{frame.get_attribute('src').split('/m/')[1]}")
    wait_for(lambda: browser.find_element(By.ID, "payload-heading"), "the payload page")
    time.sleep(0.5)
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-ran") is None
    assert browser.execute_script("return window.pwned === undefined")
    assert browser.title == "hostile"


def test_new_mail_appears_without_reloading(
    browser: WebDriver, server: PreviewServer, backend: CaptureBackend
) -> None:
    backend.send_messages([note("Before")])
    open_ui(browser, server, 1)
    backend.send_messages([note("Arrived later")])
    wait_for(
        lambda: "Arrived later" in browser.find_element(By.CSS_SELECTOR, "#messages li").text,
        "the new message at the top of the list",
    )


def test_search_filters_the_list(
    browser: WebDriver, server: PreviewServer, backend: CaptureBackend
) -> None:
    backend.send_messages([note("Invoice 42"), note("Welcome aboard"), newsletter()])
    open_ui(browser, server, 3)
    browser.find_element(By.ID, "search").send_keys("invoice")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#messages li")) == 1, "1 result")
    assert "Invoice 42" in browser.find_element(By.ID, "messages").text
