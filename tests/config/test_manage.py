"""manage.py as officials run it: a command's exit status and output, and the checks an import runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from members.models import Member
from tests.conftest import SMALL_ROSTER, second_process_env

BASE_DIR = Path(__file__).resolve().parents[2]


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR, env=second_process_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_command_keeps_its_exit_status_and_output_through_manage_py(tmp_path):
    """manage.py closes the connections and freezes the collector after the command, whatever it did."""
    bad = tmp_path / "bad.csv"
    bad.write_text(SMALL_ROSTER.replace("1995-03-01", "1995-02-30"), encoding="utf-8")
    refused = manage("import_roster", str(bad))
    assert refused.returncode == 1
    assert "line 2" in refused.stderr and "joined_on" in refused.stderr
    assert Member.objects.count() == 0

    good = tmp_path / "good.csv"
    good.write_text(SMALL_ROSTER, encoding="utf-8")
    done = manage("import_roster", str(good))
    assert done.returncode == 0, done.stderr
    assert "created 7, updated 0, unchanged 0, rejected 0" in done.stdout
    assert Member.objects.count() == 7


def test_a_bad_setting_stops_manage_py_with_its_own_error_alone():
    """The closing of connections after a command must not add an error of its own when the settings
    themselves failed: the sentence naming the variable stays the last line, in one traceback."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env={**clean, "DEBUG": "0"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.count("Traceback") == 1
    assert result.stderr.strip().splitlines()[-1].endswith("SECRET_KEY must be set when DEBUG is off.")


def _registered(tag: str):
    """A check that always fails, registered under `tag` for the test only."""

    def failing(app_configs, **kwargs):
        return [checks.Error(f"a failing {tag} check", id="tests.E001")]

    checks.register(failing, tag)
    return failing


@pytest.fixture
def failing_check(request):
    check = _registered(request.param)
    yield request.param
    checks.registry.registry.registered_checks.discard(check)


@pytest.mark.django_db
@pytest.mark.parametrize("failing_check", [checks.Tags.models], indirect=True)
def test_the_import_stops_on_a_failing_model_check(failing_check, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(SMALL_ROSTER, encoding="utf-8")
    with pytest.raises(SystemCheckError, match="a failing models check"):
        call_command("import_roster", str(path), skip_checks=False)
    assert Member.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("failing_check", [checks.Tags.urls, checks.Tags.admin, checks.Tags.security], indirect=True)
def test_the_import_leaves_the_checks_of_what_it_does_not_touch_to_manage_py_check(failing_check, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(SMALL_ROSTER, encoding="utf-8")
    call_command("import_roster", str(path), skip_checks=False)
    assert Member.objects.count() == 7
    with pytest.raises(SystemCheckError, match=f"a failing {failing_check} check"):
        call_command("check")
