#!/usr/bin/env bash
# bootgpu indices against the re-implemented original batch mode, same machine, same run (docs/benchmarks.md).
# Input: /tmp/ref_expr.h5 (8763 x 938 float32 standard normal, seed 0), made when missing.
set -e
test -f /tmp/ref_expr.h5 || python3 -c "import h5py, numpy as np; f = h5py.File('/tmp/ref_expr.h5', 'w'); f['expr'] = np.random.default_rng(0).standard_normal((8763, 938)).astype(np.float32); f['gene_names'] = [f'g{i}' for i in range(8763)]; f['sample_names'] = [f's{j}' for j in range(938)]"
cd "$(dirname "$0")/.."
for round in 1 2; do
echo "== round $round: baseline (original batch mode, batch 100, re-implemented)"
sync; /usr/bin/time -f "wall %e s, max RSS %M KiB" python benchmarks/baseline_indices.py --genes 8763 --samples 938 --n-bootstrap 1000 --batch-size 100 --out /tmp/base_idx.h5
ls -l /tmp/base_idx.h5 | awk '{print "file bytes", $5}'; rm -f /tmp/base_idx.h5
echo "== round $round: bootgpu indices (default)"
sync; /usr/bin/time -f "wall %e s, max RSS %M KiB" python -m bootgpu indices --expr /tmp/ref_expr.h5 --out /tmp/ref_idx.h5 --backend numpy
ls -l /tmp/ref_idx.h5 | awk '{print "file bytes", $5}'; rm -f /tmp/ref_idx.h5
done
