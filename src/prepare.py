"""Validate a challenge data folder, build its array cache and write the fold file.

The command is ``landcover/commands/prepare.py`` (installed: ``landcover-prepare``); ``--help`` says
how to call it.
"""

from landcover.commands.prepare import main

if __name__ == "__main__":
    main()
