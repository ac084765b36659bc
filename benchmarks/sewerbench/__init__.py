"""The sewer benchmark's parts (``benchmarks/sewer.py`` runs them): weather, sites, incidents,
hydraulics written apart from ``drivers/sim``, the sensors and the real rules, the scoring, and
the dump of the events behind the figures (``--dump``)."""
