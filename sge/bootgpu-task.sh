#!/bin/sh
# bootgpu-task.sh: one array task of a bootgpu study, on a CPU or a GPU queue (Grid Engine: SGE,
# UGE, OGS).
#
# Task K of N runs `bootgpu run --shard K/N` on every N-th focus gene of the study from the K-th (so
# each task gets its share of the heavy ones) and writes OUT/shards/shard-KKKK-of-NNNN.h5
# (atomically, when it ends).  While it runs, every
# finished focus gene is kept in OUT/parts/, so a task that is killed and run again continues where
# it stopped; a task whose shard is already complete exits at once (`bootgpu run` checks that parts
# and shard belong to this study, see OUT/study.json).  bootgpu-merge.sh, held until the array
# ends, combines the shards into OUT/results.h5.
#
# With the argument "null" (`bootgpu sge submit --permutations N` submits a second array job so),
# task K computes null replicates (K-1)R .. min(KR, N)-1 of the study's permutation null, R =
# BOOTGPU_REPLICATES_PER_TASK: `bootgpu null --permutations N --replicates A:B` with the same
# options, one file OUT/null/replicate-NNNNNN.h5 per replicate (replicates already there are
# skipped, so a rerun resumes); the merge job gathers them into OUT/null.h5 (docs/null.md).
#
# Normally `bootgpu sge submit` copies this file into OUT/sge/, sets the resource lines below to
# what the planner computed, writes OUT/sge/job.env and submits it, passing every resource on the
# qsub command line too (the command line overrides these lines).  By hand:
#     qsub -t 1-N -v BOOTGPU_JOB_ENV=/shared/OUT/sge/job.env OUT/sge/bootgpu-task.sh
#     qsub -t 1-M -v BOOTGPU_JOB_ENV=/shared/OUT/sge/job.env OUT/sge/bootgpu-task.sh null
#
# Site defaults, for a CPU queue (queue, parallel environment, run time, memory per slot; h_vmem is
# per slot and the job's ulimit -v is h_vmem x slots).  For a GPU queue, `bootgpu sge submit
# --queue-type gpu` sets "-q gpu.q" and adds "-l gpu=1", the site's GPU complex, one per task
# (--gpu-resource NAME requests another); with this file by hand, pass them to qsub.  h_vmem limits
# virtual memory, which the CUDA driver maps generously: see --cuda-vmem in the README if your GPU
# queue enforces h_vmem.  The script is POSIX sh, so it runs under any -S.
#$ -S /bin/sh
#$ -j y
#$ -r y
#$ -q cpu.q
#$ -pe smp 1
#$ -l h_rt=24:00:00
#$ -l h_vmem=4G
#
# What the task reads (from the file named by BOOTGPU_JOB_ENV, or given with qsub -v):
#   BOOTGPU_PYTHON         interpreter that has bootgpu installed, bootgpu[gpu] for cupy (the one
#                          that ran `sge submit`)
#   PATH                   the submitting shell's PATH
#   BOOTGPU_EXPR           expression matrix;  BOOTGPU_OUT  study directory (shared file system)
#   BOOTGPU_FOCUS          the study's focus genes, as for `bootgpu run --focus` (default all)
#   BOOTGPU_TASKS          N, the number of array tasks
#   BOOTGPU_BACKEND        numpy (CPU queues, the default) or cupy (GPU queues); auto falls back to
#                          numpy (and says so) where no GPU is usable
#   BOOTGPU_MEMORY_BUDGET  what the run may plan for (GPU memory for cupy); fits ulimit -v with the
#                          process overhead
#   BOOTGPU_RUN_ARGS       analysis options, e.g. "--n-bootstrap=1000 --seed=42" (no spaces in a value)
#   BOOTGPU_SETUP          optional site command run first, e.g. "module load cuda/12.4"
#   BOOTGPU_GPU_GRANT_VAR  GPU queues only: the variable in which the site's Grid Engine names the
#                          granted GPUs (SGE_HGR_gpu, set by UGE/SGE for an RSMAP complex "gpu")
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
        echo "bootgpu-task.sh: $var is not set (submit with -v BOOTGPU_JOB_ENV=OUT/sge/job.env)" >&2
        exit 2
    fi
done
if [ "$mode" = null ]; then
    tasks=$BOOTGPU_NULL_TASKS
else
    tasks=$BOOTGPU_TASKS
fi
case ${SGE_TASK_ID:-undefined} in
    undefined | '') echo "bootgpu-task.sh: not an array task; submit with -t 1-$tasks" >&2; exit 2 ;;
esac
task=$SGE_TASK_ID

# GPU queues only (BOOTGPU_GPU_GRANT_VAR set): bind the GPU Grid Engine granted.  With an RSMAP
# complex the scheduler names the granted devices in SGE_HGR_<complex> ("0", "gpu1", "0 1", or
# GPU-/MIG- UUIDs); they become CUDA_VISIBLE_DEVICES.  Where the site sets nothing,
# CUDA_VISIBLE_DEVICES stays as the site (prolog, load sensor, or none) left it.
grant_var=${BOOTGPU_GPU_GRANT_VAR:-}
case $grant_var in
    *[!A-Za-z0-9_]*) echo "bootgpu-task.sh: bad BOOTGPU_GPU_GRANT_VAR '$grant_var'" >&2; exit 2 ;;
esac
if [ -n "$grant_var" ]; then
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
fi

# One bootgpu and BLAS/OpenMP thread per granted slot; few malloc arenas, since h_vmem limits virtual memory.
threads=${NSLOTS:-1}
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
echo "bootgpu $what: job ${JOB_ID:-?} on $(hostname), queue ${QUEUE:-?}," \
    "$threads slot(s), ulimit -v $(ulimit -v), backend $BOOTGPU_BACKEND, pid $$, $(date '+%Y-%m-%d %H:%M:%S')"

if [ -n "${BOOTGPU_FOCUS:-}" ]; then
    set -- "$@" --focus "$BOOTGPU_FOCUS"
fi
if [ -n "${BOOTGPU_MEMORY_BUDGET:-}" ]; then
    set -- "$@" --memory-budget "$BOOTGPU_MEMORY_BUDGET"
fi
set -f # split BOOTGPU_RUN_ARGS into words without expanding * or ?
# shellcheck disable=SC2086
exec "$BOOTGPU_PYTHON" -m bootgpu "$@" ${BOOTGPU_RUN_ARGS:-}
