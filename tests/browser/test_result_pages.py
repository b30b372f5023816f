"""The public result pages in a real browser, without JavaScript, at desktop and phone width.

A reader follows the links from /results/ to a round's page; what the page shows is checked against
the published JSON document, and full-page screenshots are left in test-artifacts/screenshots/.
"""

from __future__ import annotations

import json

import pytest

from ballots.models import Publication
from ballots.services.count import certify_round
from tests.ballots.conftest import ScheduledElection
from tests.ballots.test_tally import SLUG, TLV_MEMBERS, close, committee_member, runoff_night, town_election, vote
from tests.browser.conftest import CHROMIUM
from tests.browser.test_admin_pages import table

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian's `chromium` package)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

pytestmark = pytest.mark.django_db(transaction=True)


def published(page, path: str) -> dict:
    """The JSON document the page links to, fetched by the browser itself."""
    response = page.request.get(path)
    assert response.ok, response.status
    return json.loads(response.text())


def check_round_page(page, document: dict) -> None:
    """Every number the round's page shows is the published document's."""
    candidates = table(page, "table.results tbody")
    assert [row[0].removesuffix(" elected").removesuffix(" to the runoff") for row in candidates] == [
        c["name"] for c in document["candidates"]
    ]
    for row, candidate in zip(candidates, document["candidates"], strict=True):
        assert row[1] == f"{candidate['votes']:,}"
        assert row[2] == f"{candidate['percent']}%"
    terms = page.locator("dl.figures dt").all_inner_texts()
    figures = dict(zip(terms, page.locator("dl.figures dd").all_inner_texts(), strict=True))
    assert figures["Turnout"] == f"{document['turnout_percent']}%"
    assert figures["Checked in"] == f"{document['checked_in']:,}"
    assert figures["Electorate"] == f"{document['electorate']:,}"
    assert figures["Ballots cast"] == f"{document['cast']:,}"
    assert figures["Stations reported"] == f"{document['stations']['reported']} of {document['stations']['total']}"
    assert page.locator("p.sha").inner_text().replace(" ", "").replace("\n", "") == document["sha256"]
    assert page.locator("p.sha span").count() == 16
    stations = table(page, "#stations ~ .scroll table tbody")
    assert [row[0] for row in stations] == [s["name"] for s in document["by_station"]]
    for row, station in zip(stations, document["by_station"], strict=True):
        assert row[1] == f"{station['checked_in']:,}"
        if station["reported"]:
            assert row[2] == f"{station['cast']:,}"
            assert row[3:] == [f"{station['votes'][c['code']]:,}" for c in document["candidates"]]
        else:
            assert row[2] == "not reported yet"
    assert f"version {document['version']}" in page.locator("main").inner_text()


def test_a_reader_follows_the_official_result_of_round_one_to_the_runoff(browsing, small_roster):
    election = town_election()
    runoff_night(election)
    for username in ("dana", "eli"):
        committee_member(username)
        certify_round(election=election.election, number=1, username=username)
    assert Publication.objects.filter(status="official").exists()
    page = browsing.page

    page.goto("/results/")
    assert page.locator("h1").inner_text() == "Elections"
    browsing.screenshot("index")
    page.click(f"a:text-is('{election.election.name}')")
    assert page.url.endswith(f"/results/{SLUG}/")
    rounds = table(page, "table tbody")
    assert rounds[0][0] == "Round 1" and rounds[0][4].startswith("Official result")
    assert rounds[1][0] == "Round 2 (runoff)" and rounds[1][3] == "Shelly Yachimovich, Isaac Herzog"
    browsing.screenshot("election")

    page.click("a:text-is('Official result')")
    document = published(page, page.locator("a:text-is('Results document (JSON)')").get_attribute("href"))
    assert document["status"] == "official"
    assert page.locator(".label.official").first.inner_text() == "Official result"
    assert page.locator(".banner").inner_text() == (
        "No candidate reached 40% — runoff between Isaac Herzog and Shelly Yachimovich on 19 September 2011."
    )
    check_round_page(page, document)
    assert page.locator("table.results caption").inner_text() == "Votes per candidate, as a share of valid votes"
    browsing.screenshot("round")

    csv_link = page.locator("a:text-is('Per-station table (CSV)')").get_attribute("href")
    assert page.request.get(csv_link).text().startswith("station,name,mode,reported")
    page.click("a:text-is('How to verify')")
    assert page.locator("h1").inner_text() == "How to verify the results"
    browsing.screenshot("verify")
    browsing.assert_clean()


def test_on_the_night_the_page_is_provisional_and_names_the_stations_not_reported(browsing, small_roster):
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:6], ["herzog", "herzog", "peretz", "yachimovich", "blank", "herzog"])
    close(election)  # Haifa's paper return is still to come
    page = browsing.page
    page.goto(f"/results/{SLUG}/rounds/1/")
    document = published(page, f"/results/{SLUG}/rounds/1/results.json")
    assert document["status"] == "provisional" and document["outcome"]["decision"] == "pending"
    assert page.locator(".label.provisional").first.inner_text() == "Provisional result"
    assert page.locator(".banner").inner_text() == "Counting: 2 of 3 stations reported."
    check_round_page(page, document)
    browsing.screenshot()
    browsing.assert_clean()


def test_a_round_without_results_says_so(browsing, small_roster):
    ScheduledElection()
    page = browsing.page
    response = page.goto(f"/results/{SLUG}/rounds/1/")
    assert response.status == 404
    assert "has no published results yet" in page.locator("main").inner_text()
    browsing.failed_requests.clear()  # the 404 is the answer under test
    browsing.screenshot()
    browsing.assert_clean()


CONTRAST = """() => {
    // WCAG 2.1 contrast of every text-bearing element against the background it is drawn on.
    const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (e) => {
        for (; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const low = [];
    for (const e of document.querySelectorAll('body *')) {
        const text = [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent.trim()).join('');
        if (!text || e.closest('[aria-hidden=true]')) continue;
        const style = getComputedStyle(e);
        const [a, b] = [lum(rgb(style.color)), lum(background(e))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        const size = parseFloat(style.fontSize);
        const large = size >= 24 || (size >= 18.66 && style.fontWeight >= 700);
        const name = `${e.tagName.toLowerCase()} "${text.slice(0, 30)}"`;
        if (ratio < (large ? 3 : 4.5)) low.push(`${name}: ${ratio.toFixed(2)}`);
    }
    return low;
}"""


def test_the_pages_are_readable_by_everyone(browsing, small_roster):
    """Contrast (WCAG AA), a language, one h1, labelled tables with header cells, and names for links."""
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:3], ["herzog", "herzog", "peretz"])
    close(election)
    page = browsing.page
    for path in ("/results/", f"/results/{SLUG}/", f"/results/{SLUG}/rounds/1/", "/results/verify/"):
        page.goto(path)
        assert page.evaluate(CONTRAST) == [], path
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("h1").count() == 1, path
        for each in page.locator("table").all():
            assert each.locator("caption").count() == 1, path
            assert each.locator("thead th[scope=col]").count() >= 2, path
        assert all(link.strip() for link in page.locator("a").all_inner_texts()), path
    browsing.assert_clean()
