#!/bin/sh
# bootgpu-task.sh: one array task of a bootgpu study, on a CPU or a GPU partition (Slurm).
#
# Task K of N runs `bootgpu run --shard K/N` on every N-th focus gene of the study from the K-th and
# writes OUT/shards/shard-KKKK-of-NNNN.h5 (atomically, when it ends).  While it runs, every finished
# focus gene is kept in OUT/parts/, so a task that is cancelled and run again continues where it
# stopped; a task whose shard is already complete exits at once (`bootgpu run` checks that parts
# and shard belong to this study, see OUT/study.json).  bootgpu-merge.sh, which waits for the array
# (--dependency=afterok), combines the shards into OUT/results.h5.
#
# With the argument "null" (`bootgpu slurm submit --permutations N` submits a second job array so),
# task K computes null replicates (K-1)R .. min(KR, N)-1 of the study's permutation null, R =
# BOOTGPU_REPLICATES_PER_TASK: `bootgpu null --permutations N --replicates A:B` with the same
# options, one file OUT/null/replicate-NNNNNN.h5 per replicate (replicates already there are
# skipped, so a rerun resumes); the merge job gathers them into OUT/null.h5 (docs/null.md).
#
# Normally `bootgpu slurm submit` copies this file into OUT/slurm/, sets the #SBATCH lines below to
# what the planner computed (and adds --partition, --account, --qos, --gres or --gpus as asked),
# writes OUT/slurm/job.env and submits it, passing every resource on the sbatch command line too
# (the command line overrides these lines).  By hand:
#     sbatch --array=1-N --export=ALL,BOOTGPU_JOB_ENV=/shared/OUT/slurm/job.env OUT/slurm/bootgpu-task.sh
#     sbatch --array=1-M --export=ALL,BOOTGPU_JOB_ENV=/shared/OUT/slurm/job.env OUT/slurm/bootgpu-task.sh null
#
# Site defaults, for a CPU partition (run time, cores, memory of the whole task).  For a GPU
# partition, `bootgpu slurm submit --partition gpu --gres gpu:1` (or --gpus 1) adds those lines;
# Slurm then sets CUDA_VISIBLE_DEVICES to the GPU it granted.  Slurm limits resident memory (--mem),
# not virtual memory, so the CUDA driver's large mappings need no allowance.  POSIX sh.
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --time=24:00:00
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#
# What the task reads (from the file named by BOOTGPU_JOB_ENV, or exported by sbatch):
#   BOOTGPU_PYTHON         interpreter that has bootgpu installed, bootgpu[gpu] for cupy (the one
#                          that ran `slurm submit`)
#   PATH                   the submitting shell's PATH
#   BOOTGPU_EXPR           expression matrix;  BOOTGPU_OUT  study directory (shared file system)
#   BOOTGPU_FOCUS          the study's focus genes, as for `bootgpu run --focus` (default all)
#   BOOTGPU_TASKS          N, the number of array tasks
#   BOOTGPU_BACKEND        numpy (CPU partitions, the default) or cupy (GPUs asked for); auto falls
#                          back to numpy (and says so) where no GPU is usable
#   BOOTGPU_MEMORY_BUDGET  what the run may plan for (GPU memory for cupy); fits --mem with the
#                          process overhead
#   BOOTGPU_RUN_ARGS       analysis options, e.g. "--n-bootstrap=1000 --seed=42" (no spaces in a value)
#   BOOTGPU_SETUP          optional site command run first, e.g. "module load cuda/12.4"
#   BOOTGPU_PERMUTATIONS, BOOTGPU_REPLICATES_PER_TASK, BOOTGPU_NULL_TASKS
#                          "null" tasks only: N, R and M = ceil(N / R), the null array's tasks
set -eu
mode=${1:-shard}
case $mode in
    shard) required=BOOTGPU_TASKS ;;
    null) required="BOOTGPU_PERMUTATIONS BOOTGPU_REPLICATES_PER_TASK BOOTGPU_NULL_TASKS" ;;
    *) echo "bootgpu-task.sh: unknown argument '$mode' (none for focus-gene shards, or null)" >&2; exit 2 ;;
esac

if [ -n "${BOOTGPU_JOB_ENV:-}" ]; then
    . "$BOOTGPU_JOB_ENV"
fi
BOOTGPU_BACKEND=${BOOTGPU_BACKEND:-numpy}
for var in BOOTGPU_PYTHON BOOTGPU_EXPR BOOTGPU_OUT $required; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        echo "bootgpu-task.sh: $var is not set (submit with --export=ALL,BOOTGPU_JOB_ENV=OUT/slurm/job.env)" >&2
        exit 2
    fi
done
if [ "$mode" = null ]; then
    tasks=$BOOTGPU_NULL_TASKS
else
    tasks=$BOOTGPU_TASKS
fi
case ${SLURM_ARRAY_TASK_ID:-} in
    '' | *[!0-9]*) echo "bootgpu-task.sh: not an array task; submit with --array=1-$tasks" >&2; exit 2 ;;
esac
task=$SLURM_ARRAY_TASK_ID

# GPUs: Slurm sets CUDA_VISIBLE_DEVICES to the GPUs granted by --gres/--gpus (gres.conf File=).
if [ -n "${SLURM_JOB_GPUS:-}${SLURM_STEP_GPUS:-}" ]; then
    echo "granted GPU(s) ${SLURM_JOB_GPUS:-$SLURM_STEP_GPUS} -> CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<unset>}"
fi

# One bootgpu and BLAS/OpenMP thread per granted core; few malloc arenas.
threads=${SLURM_CPUS_PER_TASK:-1}
export BOOTGPU_THREADS="$threads" OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
if [ -n "${BOOTGPU_SETUP:-}" ]; then
    eval "$BOOTGPU_SETUP"
fi

if [ "$mode" = null ]; then
    # replicates (K-1)R .. min(KR, N)-1, as --replicates A:B (B exclusive)
    first=$(((task - 1) * BOOTGPU_REPLICATES_PER_TASK))
    end=$((task * BOOTGPU_REPLICATES_PER_TASK))
    if [ "$end" -gt "$BOOTGPU_PERMUTATIONS" ]; then
        end=$BOOTGPU_PERMUTATIONS
    fi
    if [ "$first" -ge "$end" ]; then
        echo "bootgpu-task.sh: null task $task is beyond the $BOOTGPU_NULL_TASKS tasks of $BOOTGPU_PERMUTATIONS replicates" >&2
        exit 2
    fi
    what="null task $task/$tasks (replicates $first:$end)"
    set -- null --expr "$BOOTGPU_EXPR" --out "$BOOTGPU_OUT" --permutations "$BOOTGPU_PERMUTATIONS" \
        --replicates "$first:$end" --backend "$BOOTGPU_BACKEND"
else
    what="task $task/$tasks"
    set -- run --expr "$BOOTGPU_EXPR" --out "$BOOTGPU_OUT" --shard "$task/$tasks" --backend "$BOOTGPU_BACKEND"
fi
echo "bootgpu $what: job ${SLURM_ARRAY_JOB_ID:-?}_$task (${SLURM_JOB_ID:-?}) on $(hostname)," \
    "partition ${SLURM_JOB_PARTITION:-?}, $threads core(s), backend $BOOTGPU_BACKEND, pid $$, $(date '+%Y-%m-%d %H:%M:%S')"

if [ -n "${BOOTGPU_FOCUS:-}" ]; then
    set -- "$@" --focus "$BOOTGPU_FOCUS"
fi
if [ -n "${BOOTGPU_MEMORY_BUDGET:-}" ]; then
    set -- "$@" --memory-budget "$BOOTGPU_MEMORY_BUDGET"
fi
set -f # split BOOTGPU_RUN_ARGS into words without expanding * or ?
# shellcheck disable=SC2086
exec "$BOOTGPU_PYTHON" -m bootgpu "$@" ${BOOTGPU_RUN_ARGS:-}
