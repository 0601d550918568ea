"""The options `bootgpu sge submit` and `bootgpu slurm submit` share (their meaning is the same on
either scheduler); each scheduler's command adds its own site options."""

from __future__ import annotations

from bootgpu.cluster.model import DEFAULT_BUDGET, DEFAULT_GENES_PER_TASK
from bootgpu.options import input_options, option
from bootgpu.study.directory import FOCUS_HELP

TASKS = option("--tasks", type=int, help="array tasks (shards) N")
GENES_PER_TASK = option("--genes-per-task", type=int, resubmit=False,
                        help=f"focus genes per task (default {DEFAULT_GENES_PER_TASK})")  # fmt: skip
NULL_OPTIONS = (
    option("--permutations", type=int, metavar="N",
           help="also the permutation null (bootgpu null; docs/null.md): an array job over N null replicates, "
                "gathered by the merge job into null.h5 with each focus gene's p and q"),
    option("--replicates-per-task", type=int, metavar="R",
           help="null replicates per task (default: as many as a focus-gene task's genes, at most N)"),
)  # fmt: skip
JOB_SETUP = option("--job-setup", help="shell command the jobs run first, e.g. \"module load cuda/12.4\"")
FOCUS = option("--focus", help=FOCUS_HELP)
OVERWRITE = option("--overwrite", action="store_true", resubmit=False,
                   help="discard a study already in --out (other parameters, input or focus genes) before submitting")
MEMORY_BUDGET = option("--memory-budget", default=DEFAULT_BUDGET,
                       help="what each task plans for (device memory on gpu), e.g. 6G (default %(default)s)")
INPUT_OPTIONS = (
    *input_options(what="expression matrix (TSV/CSV(.gz) or HDF5), readable from the nodes"),
    option("--out", required=True, help="study directory, on a file system shared with the nodes"),
)  # fmt: skip


def scripts_dir_option(scheduler: str):
    return option("--scripts-dir", help=f"folder with the job scripts (default: the {scheduler}/ folder of the "
                                        f"bootgpu source)")  # fmt: skip


def dry_run_option(tool: str):
    return option("--dry-run", action="store_true", resubmit=False,
                  help=f"write the scripts and print the {tool} command lines; submit nothing")
