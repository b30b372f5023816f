"""The demo, at 2% of its size: the 2011 story end to end through the real code paths."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from audit.verification import verify_database
from ballots.demo import RUNOFF, run_demo
from ballots.models import Publication, Round, StationReturn


@pytest.mark.django_db(transaction=True)
def test_the_demo_tells_the_2011_story_and_its_log_verifies(settings):
    settings.DEBUG = True
    seen = []
    result = run_demo(progress=lambda stage, done, total: seen.append(stage), password="demo-pass-1234", scale=0.02)
    first, runoff = result.tallies[1], result.tallies[2]
    assert first.document["outcome"] == {"decision": "runoff", "winner": None, "advancing": ["yachimovich", "peretz"]}
    assert [c["code"] for c in first.document["candidates"]] == ["yachimovich", "peretz", "herzog", "mitzna"]
    assert first.document["cast"] == result.voters[1] == round(44_184 * 0.02)
    assert runoff.document["outcome"]["decision"] == "winner"
    assert runoff.document["outcome"]["winner"] == "yachimovich"
    assert runoff.document["cast"] == sum(round(n * 0.02) for n in RUNOFF.values())
    assert Round.objects.get(number=1).certified_tally == first
    assert Round.objects.get(number=2).certified_tally == runoff
    # Paper stations reported by double entry; every station of each round reported.
    assert StationReturn.objects.filter(entry=2).exists()
    assert first.document["stations"]["reported"] == first.document["stations"]["total"]
    assert {"roster", "round 1 voting", "round 2 voting"} <= set(seen)
    # Published as it went, officially once certified; the pages show it.
    assert sorted(Publication.objects.filter(status="official").values_list("round__number", flat=True)) == [1, 2]
    client = Client()
    first_page = client.get("/results/labor-2011/rounds/1/").content.decode()
    assert "Official result" in first_page and "runoff between Shelly Yachimovich and Amir Peretz" in first_page
    assert "Shelly Yachimovich is elected." in client.get("/results/labor-2011/rounds/2/").content.decode()
    report = verify_database()
    assert report.ok, report.problem
    assert f"{Publication.objects.count()} published results documents recounted" in report.summary()


@pytest.mark.django_db(transaction=True)
def test_the_demo_command_refuses_a_second_run_and_a_bad_scale(capsys, monkeypatch):
    monkeypatch.setenv("KALPI_DEMO_PASSWORD", "demo-pass-1234")
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--scale"):
        call_command("demo", "--scale", "0")
    call_command("demo", "--scale", "0.02")
    out = capsys.readouterr().out
    assert "Round 1: 884 voters" in out and "runoff yachimovich, peretz" in out and "winner yachimovich" in out
    assert "http://127.0.0.1:8000/results/labor-2011/rounds/2/" in out
    call_command("demo", "--if-empty")
    assert "demo not loaded again" in capsys.readouterr().out
    with pytest.raises(CommandError, match="exists already"):
        call_command("demo", "--scale", "0.02")
