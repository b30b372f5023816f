#!/usr/bin/env python
"""Django's command-line utility for Kalpi."""

import gc
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    finally:
        _before_exit()


def _before_exit() -> None:
    """The command is done and the process ends: close the database connections, then keep the
    interpreter's shutdown from walking every object Django loaded (gc.freeze): that walk took 0.1-0.2 s
    of every command (docs/benchmarks.md). The memory goes back with the process."""
    from django.conf import settings

    if settings.configured:  # not when the settings themselves failed: their error stands alone
        from django.db import connections

        connections.close_all()
    gc.freeze()


if __name__ == "__main__":
    main()
