#!/bin/sh
# bootgpu-merge.sh: combine the shards of a bootgpu study (Slurm).
#
# Runs `bootgpu merge OUT` once every array task has succeeded (submitted with
# --dependency=afterok on the arrays): checks that every focus gene of the study is present exactly
# once and writes OUT/results.h5 and OUT/rewiring_hubs.tsv.  If a task fails or is cancelled, Slurm
# never starts this job (it stays PENDING, reason DependencyNeverSatisfied: afterok never recovers);
# `bootgpu status OUT` names the failed tasks, and submitting the study again cancels this job,
# runs only the unfinished tasks (which resume from OUT/parts/) and submits a new merge.
#
# With a permutation null (BOOTGPU_PERMUTATIONS set: `bootgpu slurm submit --permutations N`, the
# job then also waits for the null array), it then runs `bootgpu null --gather-only` with the
# study's options: the null replicate files OUT/null/replicate-*.h5 become OUT/null.h5, and each
# focus gene's empirical p and BH q go into OUT/gene_significance.tsv and OUT/rewiring_hubs.tsv.
# It computes nothing (on NumPy).
#
# Normally submitted by `bootgpu slurm submit`, which copies this file into OUT/slurm/.  By hand:
#     sbatch --dependency=afterok:ARRAY_JOB_ID --export=ALL,BOOTGPU_JOB_ENV=/shared/OUT/slurm/job.env \
#         OUT/slurm/bootgpu-merge.sh
#
# Site defaults (the partition is the site's default unless --partition is given; --mem must hold
# the study's selected edges while they are written).  POSIX sh.
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --time=24:00:00
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#
# What the job reads (from the file named by BOOTGPU_JOB_ENV, or exported by sbatch):
#   BOOTGPU_PYTHON  interpreter that has bootgpu installed;  BOOTGPU_OUT  study directory
#   PATH, BOOTGPU_SETUP as for the array tasks
#   BOOTGPU_PERMUTATIONS  with a null only: N; then also BOOTGPU_EXPR, BOOTGPU_FOCUS and
#                   BOOTGPU_RUN_ARGS as for the array tasks
set -eu

if [ -n "${BOOTGPU_JOB_ENV:-}" ]; then
    . "$BOOTGPU_JOB_ENV"
fi
for var in BOOTGPU_PYTHON BOOTGPU_OUT; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        echo "bootgpu-merge.sh: $var is not set (submit with --export=ALL,BOOTGPU_JOB_ENV=OUT/slurm/job.env)" >&2
        exit 2
    fi
done
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
if [ -n "${BOOTGPU_SETUP:-}" ]; then
    eval "$BOOTGPU_SETUP"
fi

echo "bootgpu merge: job ${SLURM_JOB_ID:-?} on $(hostname), partition ${SLURM_JOB_PARTITION:-?}, $(date '+%Y-%m-%d %H:%M:%S')"
status=0
"$BOOTGPU_PYTHON" -m bootgpu merge "$BOOTGPU_OUT" || status=$?
if [ "$status" -ne 0 ]; then
    echo "bootgpu merge failed (exit $status)"
fi
if [ -n "${BOOTGPU_PERMUTATIONS:-}" ]; then
    # the null is gathered even where the merge failed: null.h5 is then ready for the next merge
    set -- null --expr "$BOOTGPU_EXPR" --out "$BOOTGPU_OUT" --permutations "$BOOTGPU_PERMUTATIONS" --gather-only \
        --backend numpy
    if [ -n "${BOOTGPU_FOCUS:-}" ]; then
        set -- "$@" --focus "$BOOTGPU_FOCUS"
    fi
    set -f # split BOOTGPU_RUN_ARGS into words without expanding * or ?
    null_status=0
    # shellcheck disable=SC2086
    "$BOOTGPU_PYTHON" -m bootgpu "$@" ${BOOTGPU_RUN_ARGS:-} || null_status=$?
    set +f
    if [ "$null_status" -ne 0 ]; then
        echo "bootgpu null --gather-only failed (exit $null_status)"
        if [ "$status" -eq 0 ]; then
            status=$null_status
        fi
    fi
fi
if [ "$status" -ne 0 ]; then
    echo "progress of the study:"
    "$BOOTGPU_PYTHON" -m bootgpu status "$BOOTGPU_OUT" || true
fi
exit "$status"
