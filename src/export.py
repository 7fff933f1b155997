"""Export a trained model as one self-contained bundle (weights, configs, blend, model card).

The command is ``landcover/commands/export.py`` (installed: ``landcover-export``); ``--help``
says how to call it.
"""

from landcover.commands.export import main

if __name__ == "__main__":
    main()
