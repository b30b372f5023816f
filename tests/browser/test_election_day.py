"""The election-day dashboard and a workflow's confirmation page in a real browser, without JavaScript,
at desktop (1280x900) and phone (390x844) width; screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

import pytest

from ballots.models import Round
from tests.ballots.conftest import haifa_election, polling_day  # noqa: F401 (fixtures: a day under way)
from tests.browser.conftest import CHROMIUM
from tests.browser.test_admin_pages import table

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian's `chromium` package)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_committee_follows_the_day_on_the_dashboard(browsing, committee, polling_day):  # noqa: F811
    page = browsing.page
    browsing.log_in("dana")
    page.click("#election-day-module a:text-is('Dashboard')")
    assert page.locator("h1").inner_text() == "Election day"
    browsing.screenshot("chooser")
    page.click(f"#content a:text-is('{polling_day.election.name}')")
    assert page.locator("h1").inner_text() == f"Election day: {polling_day.election.name}"
    figures = page.locator(".kalpi-figures > div").all_inner_texts()
    assert [f.split("\n")[0] for f in figures] == [
        "TURNOUT", "STATIONS STILL OPEN", "NOT YET REPORTED", "RETURNS TO RESOLVE",
    ]  # fmt: skip
    assert "44.44%" in figures[0] and "4 checked in of 9" in figures[0]
    stations = table(page, "#stations")
    assert [row[0] for row in stations[1:]] == ["tlv-01 electronic", "hfa-01 paper", "any-01 electronic"]
    assert [row[2] for row in stations[1:]] == ["2", "2", "0"]  # checked in
    assert table(page, "#hours")[1][1:3] == ["4", "4"]
    assert [row[2] for row in table(page, "#warnings")[1:]] == ["W201", "W203"]
    assert page.locator("#differing-hfa-01 caption a:text-is('Resolve')").count() == 1
    browsing.screenshot()

    page.click("#differing-hfa-01 caption a:text-is('Resolve')")
    assert page.locator("h1").inner_text() == "Resolve differing returns"
    assert page.locator("#id_station option[selected]").inner_text() == str(polling_day.station("hfa-01"))
    browsing.screenshot("resolve")
    browsing.assert_clean()


def test_the_committee_confirms_closing_the_round(browsing, committee, polling_day):  # noqa: F811
    page = browsing.page
    browsing.log_in("dana")
    page.goto("/admin/ballots/round/")
    page.check(f"input[name=_selected_action][value='{polling_day.round.pk}']")
    page.select_option("select[name=action]", "close_round")
    page.click("button[name=index]")
    assert page.locator("h1").inner_text() == "Close the round"
    assert "Closed now, and sealed if electronic: tlv-01, any-01." in page.inner_text("#content")
    browsing.screenshot("confirm")
    page.click("input[type=submit][value='Yes, close it']")
    assert page.url.endswith("/admin/ballots/round/"), page.url
    assert page.locator("ul.messagelist li.success").inner_text() == "Labor-2011 round 1: closed."
    assert Round.objects.get(pk=polling_day.round.pk).status == Round.Status.CLOSED
    browsing.screenshot()
    browsing.assert_clean()


def test_the_station_manager_sees_the_dashboard_without_the_returns(browsing, manager, polling_day):  # noqa: F811
    page = browsing.page
    browsing.log_in("moshe")
    page.goto(f"/admin/ballots/election/{polling_day.election.pk}/dashboard/")
    assert page.locator("#stations").count() == 1
    assert page.locator("#warnings, [id^=differing-]").count() == 0
    browsing.screenshot()
    browsing.assert_clean()
