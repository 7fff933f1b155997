"""Solution kit for the Preligens land cover proportions challenge (ENS Challenge Data 2021)."""

__version__ = "0.1.0"
