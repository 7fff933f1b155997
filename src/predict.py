"""Apply a trained model to new imagery, without retraining.

The command is ``landcover/commands/predict.py`` (installed: ``landcover-predict``); ``--help`` says
how to call it.
"""

from landcover.commands.predict import main

if __name__ == "__main__":
    main()
