"""The shift tests: how a blend and its members hold up on ground they never saw.

The command is ``landcover/commands/shift_test.py`` (installed: ``landcover-shift-test``);
``--help`` says how to call it.
"""

from landcover.commands.shift_test import main

if __name__ == "__main__":
    main()
