"""One headless Chromium for the browser tests, a fresh JavaScript-free context per test, and screenshots.

Playwright's sync API keeps an asyncio loop running in the main thread while it is started, and
Django refuses database calls from a thread with a running loop. So the browser lives for this package
only (not the whole session), and Django's guard is lifted for exactly that long; the live server
answers in its own thread and is unaffected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"  # the password tests/conftest.py gives every official


@dataclass(frozen=True)
class Device:
    name: str
    width: int
    height: int
    mobile: bool


DESKTOP = Device("desktop", 1280, 900, mobile=False)
PHONE = Device("phone", 390, 844, mobile=True)


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as mp:
        # Covers every fixture and teardown of the package's tests (flushes included), then lapses.
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        try:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                yield chromium
            finally:
                chromium.close()
        finally:
            playwright.stop()


@pytest.fixture(params=[DESKTOP, PHONE], ids=lambda device: device.name)
def device(request) -> Device:
    return request.param


@pytest.fixture(autouse=True)
def _transactional(transactional_db) -> None:
    """The live server runs in another thread: every browser test needs committed data."""


@pytest.fixture(autouse=True)
def _browser_test_settings(settings, tmp_path) -> None:
    # Uploaded rosters wait between the dry run and the confirmation; keep them out of the checkout.
    settings.ROSTER_UPLOAD_DIR = tmp_path / "roster-uploads"
    # Every test makes its officials and logs in through the form: a quarter of a second a hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def auditor(transactional_db) -> User:
    """Avi, an observer for a candidate: staff in the 'auditor' group."""
    user = User.objects.create_user(username="avi", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="auditor"))
    return user


class Browsing:
    """One page in a fresh browser context: logging in, screenshots, and what went wrong on the way.

    Each screenshot also measures whether the page is wider than the screen (sideways scrolling on a
    phone). `assert_clean` at the end of a test fails on that, and on any failed request (a missing
    stylesheet, say), unless the step was marked as a known overflow, reported and not yet fixed; such
    a step must still overflow, so the mark is dropped once the page is fixed.
    """

    def __init__(self, page, device: Device, test_name: str):
        self.page = page
        self.device = device
        self.test_name = test_name
        self.failed_requests: list[str] = []
        self.layout_problems: list[str] = []
        page.on("response", self._note_failure)

    def _note_failure(self, response) -> None:
        # Chromium asks for /favicon.ico by itself; Kalpi has none, and no page links to one.
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.failed_requests.append(f"{response.status} {response.url}")

    def log_in(self, username: str, password: str = PASSWORD, *, screenshot: bool = False) -> None:
        """Through the real login form, as a person would: the admin sends us there first."""
        self.page.goto("/admin/")
        assert re.search(r"/admin/login/\?next=/admin/$", self.page.url), self.page.url
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        if screenshot:
            self.screenshot("login")
        self.page.click("input[type=submit]")
        assert self.page.url.endswith("/admin/"), self.page.url
        assert self.page.locator("#user-tools strong").text_content() == username

    def screenshot(self, step: str | None = None, *, known_phone_overflow: str | None = None) -> Path:
        """Save test-artifacts/screenshots/<test>[-<step>]-<device>.png and check the page's width."""
        name = self.test_name if step is None else f"{self.test_name}-{step}"
        path = SCREENSHOTS / f"{name}-{self.device.name}.png"
        # A click that navigates returns once the new page is there, maybe before its stylesheets are.
        self.page.wait_for_load_state("load")
        self.page.screenshot(path=str(path), full_page=True)
        overflow = self.horizontal_overflow()
        known = known_phone_overflow if self.device is PHONE else None
        if overflow and not known:
            self.layout_problems.append(
                f"{path.name}: {overflow}px wider than the {self.device.width}px screen; "
                f"too wide: {', '.join(self.too_wide())}"
            )
        elif known and not overflow:
            self.layout_problems.append(f"{path.name} fits the screen now: drop known_phone_overflow ({known})")
        return path

    def horizontal_overflow(self) -> int:
        """How many CSS pixels the page is wider than the viewport (0: no sideways scrolling)."""
        width = self.page.evaluate("document.documentElement.scrollWidth")
        return max(0, width - self.device.width)

    def too_wide(self, limit: int = 6) -> list[str]:
        """The elements that push the page past the right edge (not those inside a scrolling box)."""
        return self.page.evaluate(
            """([width, limit]) => {
                const clipped = (e) => {
                    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
                        if (getComputedStyle(a).overflowX !== 'visible') return true;
                    }
                    return false;
                };
                return [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > width + 0.5 && !clipped(e))
                    .sort((a, b) => b.getBoundingClientRect().right - a.getBoundingClientRect().right)
                    .slice(0, limit)
                    .map(e => `<${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}> to ` +
                              `${Math.round(e.getBoundingClientRect().right)}px`);
            }""",
            [self.device.width, limit],
        )

    def assert_clean(self) -> None:
        assert self.failed_requests == [], "requests that failed"
        assert self.layout_problems == [], "pages that do not fit"


@pytest.fixture
def browsing(browser, live_server, device, request) -> Iterator[Browsing]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": device.width, "height": device.height},
        is_mobile=device.mobile,
        has_touch=device.mobile,
        java_script_enabled=False,
    )
    context.set_default_timeout(15_000)
    try:
        yield Browsing(context.new_page(), device, request.node.originalname)
    finally:
        context.close()
