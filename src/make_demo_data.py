"""Write a synthetic land cover dataset in the official layout (for demos and CPU runs).

The command is ``landcover/commands/make_demo_data.py`` (installed: ``landcover-make-demo-data``);
``--help`` says how to call it.
"""

from landcover.commands.make_demo_data import main

if __name__ == "__main__":
    main()
