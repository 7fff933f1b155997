"""The closing summary of a run: members, blend, shift tests and time per stage.

The command is ``landcover/commands/summary.py`` (installed: ``landcover-summary``); ``--help`` says
how to call it.
"""

from landcover.commands.summary import main

if __name__ == "__main__":
    main()
