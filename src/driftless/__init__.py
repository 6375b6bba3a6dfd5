"""driftless: continual learning with pre-trained vision-language models.

Importing this package has no side effects: it loads no model, touches no network and
changes no directory. The public entry points live in the sub-packages:

- :mod:`driftless.backbones` — loading CLIP-like models, preprocessing, encoding;
- :mod:`driftless.data` — datasets (images, class names, prompt templates);
- :mod:`driftless.benchmarks` — protocols as data (class-incremental, multi-domain);
- :mod:`driftless.features` — the feature store that encodes each image once;
- :mod:`driftless.methods` — continual-learning methods behind one protocol;
- :mod:`driftless.engine` — the task loop, evaluation, checkpoints;
- :mod:`driftless.metrics` — every metric as a pure function of the accuracy matrix;
- :mod:`driftless.report` — results files, plots and tables.
"""

__version__ = "0.1.0"
