"""Solution kit for the Preligens land cover proportions challenge (ENS Challenge Data 2021)."""

__version__ = "0.1.0"

import warnings

# tqdm.auto (imported by optuna) warns in every notebook kernel that lacks ipywidgets; the
# project's progress bars go to the terminal (progress.py), so the warning says nothing useful
warnings.filterwarnings("ignore", message="IProgress not found")
