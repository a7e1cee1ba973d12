"""The demo in a real browser (headless Chromium driven by selenium): two windows on the chat,
one on a WebSocket and one on the long-poll fallback (then on server-sent events); a message
sent in either appears in the other; the clock ticks. With ``EVSERVER_SCREENSHOT_DIR`` set, saves the screenshots the
README shows."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="needs selenium (pip install selenium)"
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def browser(width: int = 1100, height: int = 820, extra: tuple[str, ...] = ()):
    if not (CHROMIUM and DRIVER):
        message = "needs chromium and chromedriver (Debian: chromium, chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        *extra,
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))


@pytest.fixture(scope="module")
def demo(module_serve):
    return module_serve()  # no app: the built-in demo


@pytest.fixture(scope="module")
def windows() -> Iterator[list]:
    drivers = []
    try:
        drivers = [browser(), browser()]
        yield drivers
    finally:
        for d in drivers:
            d.quit()


def wait_for(driver, predicate, timeout: float = 15.0, message: str = ""):
    return WebDriverWait(driver, timeout).until(lambda d: predicate(d), message)


def chat_texts(driver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#chat .log li .text")]


def chat_status(driver) -> str:
    return driver.find_element(By.ID, "chat-status").text


def say(driver, text: str) -> None:
    box = driver.find_element(By.CSS_SELECTOR, "#chat input[name=text]")
    box.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "#chat button[type=submit]").click()


def test_chat_between_two_windows_and_the_clock_ticks(demo, windows, backend):
    ws_window, poll_window = windows
    ws_window.get(demo.url("/"))
    poll_window.get(demo.url("/?transport=poll"))
    wait_for(ws_window, lambda d: "WebSocket" in chat_status(d), message="WebSocket live")
    wait_for(poll_window, lambda d: "long-poll" in chat_status(d), message="long-poll live")

    first = f"Hello from the window on a WebSocket ({backend} backend)"
    say(ws_window, first)
    wait_for(poll_window, lambda d: first in chat_texts(d), message="long-poll window got it")
    wait_for(ws_window, lambda d: first in chat_texts(d), message="sender sees its own")

    second = "Hi! This window listens by long-poll."
    say(poll_window, second)
    wait_for(ws_window, lambda d: second in chat_texts(d), message="WebSocket window got it")
    assert chat_texts(ws_window)[-2:] == [first, second]

    # The third transport: server-sent events, replaying the room's history first.
    poll_window.get(demo.url("/?transport=sse"))
    wait_for(poll_window, lambda d: "server-sent events" in chat_status(d), message="SSE live")
    wait_for(poll_window, lambda d: chat_texts(d)[-2:] == [first, second], message="history")
    third = "And this one from the WebSocket again."
    say(ws_window, third)
    wait_for(poll_window, lambda d: third in chat_texts(d), message="SSE window got it")

    # The clock ticks: the time shown changes, and the tick counter grows.
    clock = ws_window.find_element(By.ID, "time")
    wait_for(ws_window, lambda d: clock.text.count(":") == 2, message="clock shows a time")
    shown = clock.text
    wait_for(ws_window, lambda d: clock.text != shown, timeout=5, message="clock ticks")
    assert "ticks" in ws_window.find_element(By.ID, "status").text

    out = os.environ.get("EVSERVER_SCREENSHOT_DIR")
    if out:
        say(poll_window, "Pushed to every open page the moment it is sent.")
        wait_for(ws_window, lambda d: len(chat_texts(d)) >= 3)
        Path(out).mkdir(parents=True, exist_ok=True)
        ws_window.save_screenshot(str(Path(out) / "demo.png"))
        poll_window.get(demo.url("/chat?transport=poll"))
        wait_for(poll_window, lambda d: len(chat_texts(d)) >= 3)
        poll_window.save_screenshot(str(Path(out) / "chat.png"))


def test_the_demo_over_https_trusting_a_test_ca(serve, backend, tmp_path):
    """The demo served with --certfile: Chromium, trusting the test CA that signed the
    server's certificate (and nothing else), loads the page over https, its WebSocket over
    wss, and the clock ticks."""
    import base64
    import hashlib

    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    ca = trustme.CA()
    chain = tmp_path / "server.pem"
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain.write_bytes(cert.private_key_and_cert_chain_pem.bytes() + ca.cert_pem.bytes())
    spki = x509.load_pem_x509_certificate(ca.cert_pem.bytes()).public_key()
    der = spki.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    trusted = base64.b64encode(hashlib.sha256(der).digest()).decode()

    server = serve("--certfile", str(chain))
    assert server.url("/").startswith("https://")
    driver = browser(extra=(f"--ignore-certificate-errors-spki-list={trusted}",))
    try:
        driver.get(server.url("/"))
        assert driver.execute_script("return window.isSecureContext") is True
        wait_for(driver, lambda d: "WebSocket" in chat_status(d), message="wss live")
        clock = driver.find_element(By.ID, "time")
        wait_for(driver, lambda d: clock.text.count(":") == 2, message="clock shows a time")
        shown = clock.text
        wait_for(driver, lambda d: clock.text != shown, timeout=5, message="clock ticks")
        text = f"Hello over TLS ({backend} backend)"
        say(driver, text)
        wait_for(driver, lambda d: text in chat_texts(d), message="message over wss")
    finally:
        driver.quit()
