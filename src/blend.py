"""Blend the experiments in oof/ into the final submission.

The command is ``landcover/commands/blend.py`` (installed: ``landcover-blend``); ``--help`` says
how to call it.
"""

from landcover.commands.blend import main

if __name__ == "__main__":
    main()
