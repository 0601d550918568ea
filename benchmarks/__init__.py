"""asv benchmark suite of bootgpu (asv.conf.json at the top level; docs/benchmarks.md, "Benchmark
suite").  One module per stage of the analysis (``bench_<stage>.py``); shared setup in ``common``."""
