#!/bin/sh
# bootgpu-gpu.sh: one array task of a bootgpu study on a GPU queue (Grid Engine: SGE, UGE, OGS).
#
# Task K of N runs `bootgpu run --shard K/N --backend cupy` on the K-th contiguous part of the
# study's focus genes, on the GPU Grid Engine granted, and writes OUT/shards/shard-KKKK-of-NNNN.h5
# (atomically, when it ends).  While it runs, every finished focus gene is kept in OUT/parts/, so
# a task that is killed and run again continues where it stopped; a task whose shard is already
# complete exits at once (`bootgpu run` checks that parts and shard belong to this study, see
# OUT/study.json).  bootgpu-merge.sh, held until the array ends, combines the shards.
#
# Normally `bootgpu sge submit --queue-type gpu` copies this file into OUT/sge/, sets the resource
# lines below, writes OUT/sge/job.env and submits it, passing every resource on the qsub command
# line too (the command line overrides these lines).  By hand:
#     qsub -t 1-N -v BOOTGPU_JOB_ENV=/shared/OUT/sge/job.env OUT/sge/bootgpu-gpu.sh
#
# Site defaults.  "gpu" is the site's GPU complex, one per task (bootgpu sge submit --gpu-resource
# NAME requests another).  h_vmem is per slot and limits virtual memory, which the CUDA driver maps
# generously: see --cuda-vmem in the README if your GPU queue enforces h_vmem.  The script is POSIX
# sh, so it runs under any -S.
#$ -S /bin/sh
#$ -j y
#$ -r y
#$ -q gpu.q
#$ -pe smp 1
#$ -l h_rt=24:00:00
#$ -l h_vmem=4G
#$ -l gpu=1
#
# What the task reads (from the file named by BOOTGPU_JOB_ENV, or given with qsub -v):
#   BOOTGPU_PYTHON         interpreter that has bootgpu[gpu] installed (the one that ran `sge submit`)
#   PATH                   the submitting shell's PATH
#   BOOTGPU_EXPR           expression matrix;  BOOTGPU_OUT  study directory (shared file system)
#   BOOTGPU_FOCUS          the study's focus genes, as for `bootgpu run --focus` (default all)
#   BOOTGPU_TASKS          N, the number of array tasks
#   BOOTGPU_BACKEND        cupy here; auto falls back to numpy (and says so) where no GPU is usable
#   BOOTGPU_MEMORY_BUDGET  GPU memory the run may plan for
#   BOOTGPU_RUN_ARGS       analysis options, e.g. "--n-bootstrap=1000 --seed=42" (no spaces in a value)
#   BOOTGPU_SETUP          optional site command run first, e.g. "module load cuda/12.4"
#   BOOTGPU_GPU_GRANT_VAR  variable in which the site's Grid Engine names the granted GPUs
#                          (default SGE_HGR_gpu, set by UGE/SGE for an RSMAP complex "gpu")
set -eu

if [ -n "${BOOTGPU_JOB_ENV:-}" ]; then
    . "$BOOTGPU_JOB_ENV"
fi
BOOTGPU_BACKEND=${BOOTGPU_BACKEND:-cupy}
for var in BOOTGPU_PYTHON BOOTGPU_EXPR BOOTGPU_OUT BOOTGPU_TASKS; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        echo "bootgpu-gpu.sh: $var is not set (submit with -v BOOTGPU_JOB_ENV=OUT/sge/job.env)" >&2
        exit 2
    fi
done
case ${SGE_TASK_ID:-undefined} in
    undefined | '') echo "bootgpu-gpu.sh: not an array task; submit with -t 1-$BOOTGPU_TASKS" >&2; exit 2 ;;
esac
task=$SGE_TASK_ID

# Bind the GPU Grid Engine granted.  With an RSMAP complex the scheduler names the granted
# devices in SGE_HGR_<complex> ("0", "gpu1", "0 1", or GPU-/MIG- UUIDs); they become
# CUDA_VISIBLE_DEVICES.  Where the site sets nothing, CUDA_VISIBLE_DEVICES stays as the site
# (prolog, load sensor, or none) left it.
grant_var=${BOOTGPU_GPU_GRANT_VAR:-SGE_HGR_gpu}
case $grant_var in
    '' | *[!A-Za-z0-9_]*) echo "bootgpu-gpu.sh: bad BOOTGPU_GPU_GRANT_VAR '$grant_var'" >&2; exit 2 ;;
esac
eval "granted=\${$grant_var:-}"
if [ -n "$granted" ]; then
    devices=
    for dev in $(printf '%s\n' "$granted" | tr ',' ' '); do
        case $dev in
            GPU-* | MIG-* | [0-9]*) ;;
            *) dev=$(printf '%s\n' "$dev" | sed 's/^[^0-9]*//') ;; # gpu1 -> 1
        esac
        devices=${devices:+$devices,}$dev
    done
    CUDA_VISIBLE_DEVICES=$devices
    export CUDA_VISIBLE_DEVICES
    echo "granted GPU(s) $grant_var='$granted' -> CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"
else
    echo "no $grant_var from Grid Engine; CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<unset>} as the site set it"
fi

# CPU threads: one per granted slot; few malloc arenas, since h_vmem limits virtual memory.
threads=${NSLOTS:-1}
export BOOTGPU_THREADS="$threads" OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
if [ -n "${BOOTGPU_SETUP:-}" ]; then
    eval "$BOOTGPU_SETUP"
fi

echo "bootgpu task $task/$BOOTGPU_TASKS: job ${JOB_ID:-?} on $(hostname), queue ${QUEUE:-?}," \
    "$threads slot(s), ulimit -v $(ulimit -v), backend $BOOTGPU_BACKEND, pid $$, $(date '+%Y-%m-%d %H:%M:%S')"

set -- run --expr "$BOOTGPU_EXPR" --out "$BOOTGPU_OUT" --shard "$task/$BOOTGPU_TASKS" --backend "$BOOTGPU_BACKEND"
if [ -n "${BOOTGPU_FOCUS:-}" ]; then
    set -- "$@" --focus "$BOOTGPU_FOCUS"
fi
if [ -n "${BOOTGPU_MEMORY_BUDGET:-}" ]; then
    set -- "$@" --memory-budget "$BOOTGPU_MEMORY_BUDGET"
fi
set -f # split BOOTGPU_RUN_ARGS into words without expanding * or ?
# shellcheck disable=SC2086
exec "$BOOTGPU_PYTHON" -m bootgpu "$@" ${BOOTGPU_RUN_ARGS:-}
