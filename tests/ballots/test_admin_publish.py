"""The committee publishes from the admin (after a confirmation page) and reads what was published;
the other groups cannot publish."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ballots.models import Publication
from ballots.services.count import certify_round
from tests.ballots.conftest import act
from tests.ballots.test_admin_workflows import shown
from tests.ballots.test_tally import TLV_MEMBERS, close, committee_member, town_election, vote

pytestmark = pytest.mark.django_db

NONE = {"yachimovich": 0, "peretz": 0, "herzog": 0}  # Haifa's paper return: nobody came


@pytest.fixture
def counted(small_roster):
    """Round 1 closed (not in a committed transaction here: nothing was published by itself)."""
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:4], ["herzog", "herzog", "peretz", "herzog"])
    close(election)
    assert not Publication.objects.exists()
    return election


def test_the_committee_publishes_provisional_results_after_the_confirmation(client, committee, counted):
    round_ = counted.round
    client.force_login(committee)
    page = act(client, "round", "publish", [round_], confirm=False)
    assert "Published so far: nothing yet." in page.text and 'value="Yes, publish"' in page.text
    assert not Publication.objects.exists()  # the confirmation page writes nothing

    page = act(client, "round", "publish", [round_])
    publication = Publication.objects.get()
    assert publication.status == "provisional" and publication.published_by == "dana"
    assert shown(page, "success")[0].endswith(f"version 1 (provisional) is out, sha256 {publication.sha256}.")
    act(client, "round", "publish", [round_])  # again: nothing new
    assert Publication.objects.count() == 1


def test_a_certified_round_is_published_officially(client, committee, counted):
    from ballots.services.count import tally_round
    from ballots.services.station import enter_return

    enter_return(station=counted.station("hfa-01"), entry=1, counts=NONE, blank=0, invalid=0, total=0, actor="x")
    enter_return(station=counted.station("hfa-01"), entry=2, counts=NONE, blank=0, invalid=0, total=0, actor="y")
    tally_round(election=counted.election, number=1, actor="dana")
    for username in ("eli", "dana2"):
        committee_member(username)
        certify_round(election=counted.election, number=1, username=username)
    client.force_login(committee)
    page = act(client, "round", "publish", [counted.round], confirm=False)
    assert "Publishes the official results (certified)" in page.text
    act(client, "round", "publish", [counted.round])
    assert Publication.objects.get().status == "official"


@pytest.mark.parametrize("group", ["manager", "clerk", "auditor", "outsider"])
def test_no_other_group_can_publish(client, counted, group, request):
    client.force_login(request.getfixturevalue(group))
    listing = client.get(reverse("admin:ballots_round_changelist"))
    assert listing.status_code == 403 or 'value="publish"' not in listing.content.decode()
    client.post(
        reverse("admin:ballots_round_changelist"),
        {"action": "publish", "_selected_action": [counted.round.pk], "post": "yes"},
    )
    assert not Publication.objects.exists()


def test_the_committee_and_auditors_read_the_published_versions(client, committee, auditor, counted):
    act_client = client
    act_client.force_login(committee)
    act(act_client, "round", "publish", [counted.round])
    publication = Publication.objects.get()
    for user in (committee, auditor):
        client.force_login(user)
        listing = client.get(reverse("admin:ballots_publication_changelist"))
        assert listing.status_code == 200 and publication.sha256 in listing.content.decode()
        detail = client.get(reverse("admin:ballots_publication_change", args=[publication.pk]))
        assert detail.status_code == 200
        assert client.post(reverse("admin:ballots_publication_delete", args=[publication.pk])).status_code == 403
