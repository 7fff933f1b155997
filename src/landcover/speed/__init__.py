"""Speed measurements, one subcommand each of ``python src/benchmarks/speed.py``:

- ``read``: patch reading throughput, TIFF decoding against the array cache (``read.py``);
- ``loader``: training fed by the real batch builder against a batch already on the device
  (``loader.py``);
- ``model``: training and inference images/s per backbone on synthetic tensors (``model.py``);
- ``blend``: the blend's Optuna study and ``fit_blend`` at the challenge's scale (``blend.py``);
- ``scene``: pixels/s and peak memory of mapping a generated N x N scene (``scene.py``);
- ``estimate``: a profile's network experiments in minutes from measured rates, or in FLOPs
  (``estimate.py``);
- ``plan``: the resolved experiments, the data's size and their cost in FLOPs, without
  running anything: what ``./run_all.sh --dry-run`` prints (``plan.py``).

Each module has ``add_arguments(parser)`` and ``run(args)``; ``rates.py`` holds the
measurements they share (the trainer's own step and prediction, timed; FLOP counts).
"""

COMMANDS = ("read", "loader", "model", "blend", "scene", "estimate", "plan")
