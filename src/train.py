"""Train experiments with k-fold CV and write their OOF and test predictions.

The command is ``landcover/commands/train.py`` (installed: ``landcover-train``); ``--help`` says
how to call it.
"""

from landcover.commands.train import main

if __name__ == "__main__":
    main()
