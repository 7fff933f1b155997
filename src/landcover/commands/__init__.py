"""The command-line entry points, one module each (``main(argv)``): ``src/<name>.py`` runs
them from a checkout, ``landcover-<name>`` from an installed package."""
