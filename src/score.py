"""Score a prediction CSV against the truth with the challenge metric.

The command is ``landcover/commands/score.py`` (installed: ``landcover-score``); ``--help`` says
how to call it.
"""

from landcover.commands.score import main

if __name__ == "__main__":
    main()
