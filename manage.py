#!/usr/bin/env python
"""Django's command-line utility for SyncConsole."""
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "syncconsole.settings")
    from django.core.management import execute_from_command_line

    from syncconsole.doctor import settings_refusal

    settings_refusal(sys.argv)  # `doctor` with settings that refuse to load: that is its finding

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
