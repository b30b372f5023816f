"""App configuration for ballots."""

from django.apps import AppConfig


class BallotsConfig(AppConfig):
    name = "ballots"
