"""Who may do what of election day in the admin: every group sees and does its own part only.

The committee runs the workflows and resolves returns; station managers and auditors see the
dashboard (auditors with the returns, read-only); roster clerks see none of it.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from audit.models import Entry
from ballots.models import Election, Round
from ballots.services import setup
from tests.ballots.conftest import act
from tests.conftest import ELECTION_FILE

GROUPS = ["roster clerk", "station manager", "election committee", "auditor"]
DASHBOARD = {"station manager", "election committee", "auditor"}
RETURNS = {"election committee", "auditor"}  # those who may read the paper returns
WORKFLOWS = {"election committee"}
# Each action, on which changelist, with a model to select.
ACTIONS = [
    ("election", "freeze_electorate"),
    ("round", "open_round"),
    ("round", "close_round"),
    ("round", "certify"),
    ("round", "set_dates"),
]


def _official(group: str) -> User:
    user = User.objects.create_user(username="official", password="correct horse battery", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture(params=GROUPS)
def official(request, db) -> User:
    """An official of each group in turn."""
    return _official(request.param)


@pytest.fixture(params=[group for group in GROUPS if group not in WORKFLOWS])
def not_committee(request, db) -> User:
    return _official(request.param)


def group_of(user: User) -> str:
    return user.groups.get().name


def test_the_dashboard_is_for_station_managers_the_committee_and_auditors(client, official, polling_day):
    client.force_login(official)
    page = client.get(reverse("admin:ballots_election_dashboard", args=[polling_day.election.pk]))
    chooser = client.get(reverse("admin:ballots_election_dashboards"))
    index = client.get(reverse("admin:index")).text
    if group_of(official) in DASHBOARD:
        assert page.status_code == 200 and chooser.status_code == 200
        assert 'id="stations"' in page.text and 'id="hours"' in page.text
        assert reverse("admin:ballots_election_dashboards") in index
    else:
        assert page.status_code == 403 and chooser.status_code == 403
        assert reverse("admin:ballots_election_dashboards") not in index


def test_the_returns_on_the_dashboard_are_for_those_who_may_read_returns(client, official, polling_day):
    client.force_login(official)
    page = client.get(reverse("admin:ballots_election_dashboard", args=[polling_day.election.pk]))
    if group_of(official) not in DASHBOARD:
        return
    shows_returns = 'id="differing-hfa-01"' in page.text and 'id="warnings"' in page.text
    assert shows_returns == (group_of(official) in RETURNS)
    resolve = reverse("admin:ballots_returnresolution_add")
    assert (resolve in page.text) == (group_of(official) in WORKFLOWS)


def test_only_the_committee_resolves_differing_returns(client, official, polling_day):
    client.force_login(official)
    status = client.get(reverse("admin:ballots_returnresolution_add")).status_code
    assert status == (200 if group_of(official) in WORKFLOWS else 403)


def test_only_the_committee_is_offered_the_workflows(client, official, election):
    client.force_login(official)
    for model, action in ACTIONS:
        page = client.get(reverse(f"admin:ballots_{model}_changelist"))
        if group_of(official) in WORKFLOWS:
            assert f'<option value="{action}">' in page.text, action
        elif group_of(official) == "auditor":  # reads the rounds and elections, is offered nothing
            assert page.status_code == 200 and f'value="{action}"' not in page.text, action
        else:
            assert page.status_code == 403, (model, action)


@pytest.fixture
def draft_and_scheduled(small_roster) -> tuple[Election, Round]:
    """A draft election to freeze and, in another frozen one, a round to open or move."""
    draft, _ = setup.load_election(data={**ELECTION_FILE, "slug": "draft"}, actor="committee")
    frozen, _ = setup.load_election(data=ELECTION_FILE, actor="committee")
    setup.freeze_electorate(election=frozen, actor="committee")
    return draft, frozen.rounds.get()


@pytest.mark.parametrize(("model", "action"), ACTIONS)
def test_no_one_else_gets_a_workflow_done_by_posting_it(client, not_committee, draft_and_scheduled, model, action):
    # The committee doing each of them is in test_admin_workflows.
    official = not_committee
    draft, round_ = draft_and_scheduled
    before = Entry.objects.count()
    client.force_login(official)
    fields = {"opens_at": "2011-09-19T07:00", "closes_at": "2011-09-19T22:00"}
    response = act(client, model, action, [draft if model == "election" else round_], **fields)
    assert response.status_code == (200 if group_of(official) == "auditor" else 403)
    assert Entry.objects.count() == before
    draft.refresh_from_db()
    round_.refresh_from_db()
    assert draft.status == Election.Status.DRAFT and round_.status == Round.Status.SCHEDULED
    assert round_.opens_at.day == 12
