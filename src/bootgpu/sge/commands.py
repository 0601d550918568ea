"""`bootgpu sge submit`: Grid Engine's site options, checked, then the shared submit flow
(``bootgpu.cluster.submit``) with Grid Engine's renderer and client.  `bootgpu status` is
``bootgpu.cluster.status`` (either scheduler)."""

from __future__ import annotations

import argparse

from bootgpu.backends import BACKEND_NAMES
from bootgpu.cluster import submit as flow
from bootgpu.cluster.options import (FOCUS, GENES_PER_TASK, INPUT_OPTIONS, JOB_SETUP, MEMORY_BUDGET, NULL_OPTIONS,
                                     OVERWRITE, TASKS, dry_run_option, scripts_dir_option)  # fmt: skip
from bootgpu.options import ANALYSIS_OPTIONS, add_options, option
from bootgpu.sge.scheduler import SGE
from bootgpu.sge.submission import (DEFAULT_MERGE_VMEM, DEFAULT_PE, DEFAULT_RUNTIME, Submission, check_options,
                                    request_for)  # fmt: skip

# The options of `sge submit` besides the input and analysis ones, in the order of its help.  Each is
# also written into the command that submits the study again (study.json, `bootgpu status`), unless
# marked resubmit=False.
SITE_OPTIONS = (
    option("--queue", help="queue for the tasks (-q; default cpu.q or gpu.q; '' for none)"),
    option("--merge-queue", help="queue for the merge job (default: --queue on cpu, none on gpu)"),
    option("--pe", default=DEFAULT_PE, help="parallel environment for the slots (default %(default)s; '' for none)"),
    option("--slots", type=int, default=1, help="slots (threads) per task (default %(default)s)"),
    option("--runtime", default=DEFAULT_RUNTIME, help="h_rt per task and for the merge, H:M:S (default %(default)s)"),
    option("--max-vmem", help="largest h_vmem per slot the queue allows (e.g. 16G); refuse to submit above it"),
    option("--merge-vmem", default=DEFAULT_MERGE_VMEM, help="h_vmem of the merge job (default %(default)s)"),
    option("--cuda-vmem", default="0",
           help="gpu queue: virtual memory the CUDA driver maps, added to h_vmem (default %(default)s; see README)"),
    option("--gpu-resource", default="gpu",
           help="gpu queue: the site's GPU complex, requested as -l NAME=1 (default %(default)s)"),
    option("--backend", choices=BACKEND_NAMES, help="backend of the tasks (default numpy on cpu, cupy on gpu)"),
    option("--qsub-args", help="more qsub options for both jobs, e.g. \"-P project -m ea\""),
    JOB_SETUP,
    scripts_dir_option("sge"),
    dry_run_option("qsub"),
    FOCUS,
    OVERWRITE,
    MEMORY_BUDGET,
)  # fmt: skip
STUDY_OPTIONS = (
    *INPUT_OPTIONS,
    option("--queue-type", required=True, choices=("cpu", "gpu"), help="cpu: --backend numpy; gpu: --backend cupy, -l gpu=1"),
)  # fmt: skip
SUBMIT_OPTIONS = (*STUDY_OPTIONS, TASKS, GENES_PER_TASK, *NULL_OPTIONS, *SITE_OPTIONS, *ANALYSIS_OPTIONS)  # parser order
read_study_input = flow.read_study_input


def cmd_submit(args: argparse.Namespace) -> int:
    check_options(args)
    return flow.submit_study(args, SGE, SUBMIT_OPTIONS, request_for)


def submit_command(args: argparse.Namespace, sub: Submission) -> list[str]:
    """The `bootgpu sge submit` command that submits this study again, every option explicit."""
    return flow.submit_command(args, sub, SUBMIT_OPTIONS, SGE.name)


def register_commands(subparsers) -> None:
    """Add ``sge submit`` to the CLI's subparsers."""
    sge = subparsers.add_parser("sge", help="run a study on a Grid Engine cluster (SGE/UGE/OGS)",
                                description="Run a study on a Grid Engine cluster (SGE, UGE, OGS): `bootgpu sge "
                                            "submit`; `bootgpu status DIR` follows it.",
                                epilog="example:\n  bootgpu sge submit --expr /shared/expr.tsv.gz --out /shared/study "
                                       "--queue-type cpu --tasks 100",
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sge_sub = sge.add_subparsers(dest="sge_command", required=True)
    sub = sge_sub.add_parser(
        "submit", help="submit a study as an array job over shards of focus genes, then a merge job",
        description="Submit a study as one Grid Engine array job (task K runs `bootgpu run --shard K/N`) and "
                    "a merge job that waits for it (-hold_jid); with --permutations N also an array job over "
                    "the null replicates (`bootgpu null --replicates A:B`), which the merge gathers.  Run it "
                    "again with the same options to resubmit what did not finish.",
        epilog="examples:\n"
               "  bootgpu sge submit --expr /shared/expr.tsv.gz --out /shared/study --queue-type cpu --tasks 100\n"
               "  bootgpu sge submit --expr /shared/expr.h5 --out /shared/study --queue-type gpu --tasks 8 "
               "--permutations 200\n"
               "  bootgpu sge submit ... --dry-run       # print the job scripts and qsub commands, submit nothing",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_options(sub, STUDY_OPTIONS)
    split = sub.add_mutually_exclusive_group()
    add_options(split, (TASKS, GENES_PER_TASK))
    add_options(sub, (*NULL_OPTIONS, *SITE_OPTIONS, *ANALYSIS_OPTIONS))
    sub.set_defaults(func=cmd_submit)
