"""`bootgpu slurm submit`: Slurm's site options, checked, then the shared submit flow
(``bootgpu.cluster.submit``) with Slurm's renderer and client.  `bootgpu status` is
``bootgpu.cluster.status`` (either scheduler)."""

from __future__ import annotations

import argparse

from bootgpu.backends import BACKEND_NAMES
from bootgpu.cluster import submit as flow
from bootgpu.cluster.options import (FOCUS, GENES_PER_TASK, INPUT_OPTIONS, JOB_SETUP, MEMORY_BUDGET, NULL_OPTIONS,
                                     OVERWRITE, TASKS, dry_run_option, scripts_dir_option)  # fmt: skip
from bootgpu.options import ANALYSIS_OPTIONS, add_options, option
from bootgpu.slurm.scheduler import SLURM
from bootgpu.slurm.submission import DEFAULT_MERGE_MEMORY, DEFAULT_RUNTIME, Submission, check_options, request_for

# The options of `slurm submit` besides the input and analysis ones, in the order of its help; each
# is written into the command that submits the study again unless marked resubmit=False.
SITE_OPTIONS = (
    option("--partition", help="partition of the tasks (default: the site's default partition)"),
    option("--merge-partition", help="partition of the merge job (default: --partition without GPUs, else the "
                                     "site's default)"),
    option("--account", help="account to charge (--account)"),
    option("--qos", help="quality of service (--qos)"),
    option("--time", default=DEFAULT_RUNTIME, help="time limit per task and for the merge, H:M:S or D-H:M:S "
                                                   "(default %(default)s)"),
    option("--cpus-per-task", type=int, default=1, help="cores (threads) per task (default %(default)s)"),
    option("--merge-mem", default=DEFAULT_MERGE_MEMORY, help="memory of the merge job (default %(default)s)"),
    option("--gres", help="GPU queue: generic resources per task, gpu[:TYPE][:N], e.g. gpu:1 or gpu:a100:1"),
    option("--gpus", help="GPU queue: GPUs per task, N or TYPE:N (instead of --gres)"),
    option("--array-throttle", type=int, metavar="N", help="run at most N tasks of an array at once (--array=...%%N)"),
    option("--sbatch-extra", metavar="FILE",
           help="file of more '#SBATCH --option=value' lines for every job (e.g. --mail-type=END)"),
    option("--backend", choices=BACKEND_NAMES, help="backend of the tasks (default numpy; cupy with --gres/--gpus)"),
    JOB_SETUP,
    scripts_dir_option("slurm"),
    dry_run_option("sbatch"),
    FOCUS,
    OVERWRITE,
    MEMORY_BUDGET,
)  # fmt: skip
SUBMIT_OPTIONS = (*INPUT_OPTIONS, TASKS, GENES_PER_TASK, *NULL_OPTIONS, *SITE_OPTIONS, *ANALYSIS_OPTIONS)  # parser order


def cmd_submit(args: argparse.Namespace) -> int:
    check_options(args)
    return flow.submit_study(args, SLURM, SUBMIT_OPTIONS, request_for)


def submit_command(args: argparse.Namespace, sub: Submission) -> list[str]:
    """The `bootgpu slurm submit` command that submits this study again, every option explicit."""
    return flow.submit_command(args, sub, SUBMIT_OPTIONS, SLURM.name)


def register_commands(subparsers) -> None:
    """Add ``slurm submit`` to the CLI's subparsers."""
    slurm = subparsers.add_parser("slurm", help="run a study on a Slurm cluster",
                                  description="Run a study on a Slurm cluster: `bootgpu slurm submit`; "
                                              "`bootgpu status DIR` follows it.",
                                  epilog="example:\n  bootgpu slurm submit --expr /shared/expr.tsv.gz --out "
                                         "/shared/study --partition cpu --tasks 100",
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    slurm_sub = slurm.add_subparsers(dest="slurm_command", required=True)
    sub = slurm_sub.add_parser(
        "submit", help="submit a study as a job array over shards of focus genes, then a merge job",
        description="Submit a study as one Slurm job array (task K runs `bootgpu run --shard K/N`) and a merge "
                    "job that runs once every task succeeded (--dependency=afterok); with --permutations N also "
                    "a job array over the null replicates (`bootgpu null --replicates A:B`), which the merge "
                    "gathers.  Run it again with the same options to resubmit what did not finish: it cancels "
                    "a merge left waiting on a failed task and submits a new one.",
        epilog="examples:\n"
               "  bootgpu slurm submit --expr /shared/expr.tsv.gz --out /shared/study --partition cpu --tasks 100\n"
               "  bootgpu slurm submit --expr /shared/expr.h5 --out /shared/study --partition gpu --gres gpu:1 "
               "--tasks 8 --permutations 200\n"
               "  bootgpu slurm submit ... --dry-run       # print the job scripts and sbatch commands, submit "
               "nothing",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_options(sub, INPUT_OPTIONS)
    split = sub.add_mutually_exclusive_group()
    add_options(split, (TASKS, GENES_PER_TASK))
    add_options(sub, NULL_OPTIONS)
    add_options(sub, SITE_OPTIONS[:7])
    gpus = sub.add_mutually_exclusive_group()
    add_options(gpus, SITE_OPTIONS[7:9])
    add_options(sub, (*SITE_OPTIONS[9:], *ANALYSIS_OPTIONS))
    sub.set_defaults(func=cmd_submit)
