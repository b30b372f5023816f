"""manage.py add_official USERNAME --role ROLE: an official, password from a prompt or KALPI_OFFICIAL_PASSWORD."""

import getpass
import os

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ballots.management.commands._helpers import refusals_as_errors
from ballots.services.setup import ROLES, add_official

PASSWORD_ENV = "KALPI_OFFICIAL_PASSWORD"


class Command(BaseCommand):
    help = "Create an official with a role (committee, clerk, station_manager, auditor)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=sorted(ROLES))
        parser.add_argument("--user", default="cli")

    def handle(self, *args, username, role, user, **options):
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            if not self.stdin_is_terminal():
                raise CommandError(f"no terminal to ask for the password: set {PASSWORD_ENV}")
            password = getpass.getpass(f"Password for {username}: ")
            if password != getpass.getpass("Again: "):
                raise CommandError("the passwords differ")
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError("the password is too weak: " + " ".join(exc.messages)) from None
        with refusals_as_errors():
            add_official(username=username, role=role, password=password, actor=user)
        self.stdout.write(f"{username} is an official with the role {role}.")

    @staticmethod
    def stdin_is_terminal() -> bool:
        import sys

        return sys.stdin.isatty()
