"""``python -m bootgpu.bench --worker IMPL ...``: one implementation of `bootgpu bench` in a process
of its own (``worker.worker_main``); `bootgpu bench` starts one for each implementation."""

import sys

from bootgpu.bench.worker import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
