"""`bootgpu bench`: the command, its options, and the run of every implementation (each in a
process of its own, ``python -m bootgpu.bench --worker``) into one report."""

from __future__ import annotations

import argparse

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bootgpu.backends import REGISTRY, unusable_reason
from bootgpu.bench.check import compare_edges
from bootgpu.bench.matrices import SYNTHETIC, default_planted, synthetic_description
from bootgpu.bench.reference import REFERENCE, REFERENCE_DESCRIPTION
from bootgpu.bench.report import format_table, write_plot
from bootgpu.bench.stages import STAGES
from bootgpu.bench.worker import worker_command
from bootgpu.errors import BootgpuError

BENCH_BACKENDS = tuple(REGISTRY)


def run_bench(backends, genes: int, samples: int, n_bootstrap: int, *, planted: int | None = None,
              memory_budget: str | None = None, reference: bool = True, log=None, expr: str | None = None,
              focus: int = 0, focus_name: str | None = None, samples_in_rows: bool = False,
              synthetic: str = "planted") -> dict:
    """Run every implementation in its own process; figures, ratios and the edge check as a dict.
    With ``expr`` the matrix is that file (``genes`` x ``samples`` as read) and the focus gene its
    row ``focus``; else the synthetic matrix ``synthetic`` (``synthetic_values``) and its gene 0."""
    import platform

    from bootgpu.version import __version__

    planted = default_planted(genes) if planted is None else planted
    impls = list(backends) + ([REFERENCE] if reference else [])
    report: dict = {
        "bootgpu_version": __version__,
        "shape": {"genes": genes, "samples": samples, "n_bootstrap": n_bootstrap,
                  "planted_per_class": planted if not expr and synthetic == "planted" else None,
                  "focus": focus_name or focus,
                  "data": str(Path(expr).resolve()) if expr else synthetic_description(synthetic)},
        "machine": {"cpu": _cpu_name(), "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "numpy": np.__version__},
        "stages": list(STAGES),
        "reference_description": REFERENCE_DESCRIPTION if reference else None,
        "implementations": {},
    }
    with tempfile.TemporaryDirectory(prefix="bootgpu-bench-") as tmp:
        for impl in impls:
            if log:
                log(f"bench: {impl} on {genes} x {samples}, B = {n_bootstrap} ...")
            cmd = worker_command(impl, genes, samples, n_bootstrap, planted, tmp, memory_budget=memory_budget,
                                 expr=expr, focus=focus, samples_in_rows=samples_in_rows, synthetic=synthetic)
            report["implementations"][impl] = _run_process(impl, cmd)
        if reference:
            report["check"] = {impl: compare_edges(Path(tmp), impl) for impl in backends}
    if reference:
        _add_ratios(report, backends)
    return report


def _run_process(impl: str, cmd: list) -> dict:
    """Run one worker; its figures (the last line it prints) with ``process_seconds``, its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BootgpuError(f"bench: the {impl} run failed: {tail}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["process_seconds"] = time.perf_counter() - t0
    return info


def _add_ratios(report: dict, backends) -> None:
    """Each backend stage's ``ratio_vs_reference`` (the reference's seconds / its seconds) and
    ``host_memory_vs_reference`` (its peak host memory / the reference's)."""
    ref = report["implementations"][REFERENCE]["stages"]
    for impl in backends:
        for name, st in report["implementations"][impl]["stages"].items():
            st["ratio_vs_reference"] = ref[name]["seconds"] / st["seconds"] if st["seconds"] > 0 else None
            rp = ref[name]["peak_host_bytes"]
            st["host_memory_vs_reference"] = st["peak_host_bytes"] / rp if rp else None



def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def _command_line(args) -> str:
    words = ["bootgpu", "bench"]
    if args.backend:
        words += ["--backend", *args.backend]
    if args.expr:
        words += ["--expr", args.expr] + (["--focus", args.focus] if args.focus else [])
        words += ["--samples-in-rows"] if args.samples_in_rows else []
    else:
        words += ["--synthetic", args.synthetic, "--genes", str(args.genes), "--samples", str(args.samples)]
    words += ["--n-bootstrap", str(args.n_bootstrap)]
    for opt in ("planted", "memory_budget", "json", "plot"):
        if getattr(args, opt) is not None:
            words += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
    return " ".join(words + (["--no-reference"] if args.no_reference else []))


def cmd_bench(args) -> int:
    """`bootgpu bench`: the options checked, every implementation run, the table printed (and the
    JSON and PNG written)."""
    backends = _backends(args)
    focus, focus_name = _focus(args)
    _check_options(args)
    report = run_bench(backends, args.genes, args.samples, args.n_bootstrap, planted=args.planted,
                       memory_budget=args.memory_budget, reference=not args.no_reference,
                       log=lambda line: print(line, file=sys.stderr, flush=True), expr=args.expr, focus=focus,
                       focus_name=focus_name, samples_in_rows=args.samples_in_rows, synthetic=args.synthetic)
    report["command"] = _command_line(args)
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        try:
            write_plot(report, Path(args.plot))
        except ImportError as exc:
            raise BootgpuError(f"--plot needs matplotlib ({exc}); pip install matplotlib") from None
        print(f"wrote {args.plot}")
    return 0


def _backends(args) -> list:
    """--backend (each once), or every benchmarked backend that can run here; refused if one cannot."""
    if args.backend:
        backends = list(dict.fromkeys(args.backend))
    else:  # every benchmarked backend that can run here
        backends = [name for name, spec in REGISTRY.items() if spec.benchmarked and spec.unusable_reason() is None]
    for name in backends:
        if reason := unusable_reason(name):
            raise BootgpuError(f"--backend {name} is not usable: {reason}")
    return backends


def _focus(args) -> tuple:
    """(row, name) of the focus gene: with --expr, --focus in the file read (which also sets
    ``args.genes`` and ``args.samples``); else (0, None), gene 0 of the synthetic matrix."""
    if args.expr:
        from bootgpu.options import read_input
        from bootgpu.study.directory import parse_focus

        expr = read_input(args)
        args.genes, args.samples = expr.n_genes, expr.n_samples
        chosen = parse_focus(args.focus or "#0", expr)
        if len(chosen) != 1:
            raise BootgpuError(f"bench --focus names one focus gene, got {len(chosen)}")
        return chosen[0], expr.gene_names[chosen[0]]
    if args.focus:
        raise BootgpuError("bench --focus needs --expr (the synthetic matrix's focus gene is its gene 0)")
    return 0, None


def _check_options(args) -> None:
    """The shape, B and the synthetic matrix's options, as one-line errors before any worker starts."""
    from bootgpu.config import AnalysisConfig
    from bootgpu.synthetic import default_module_sizes

    AnalysisConfig(n_bootstrap=args.n_bootstrap).validate(args.samples)
    if args.genes < 2:
        raise BootgpuError(f"--genes must be at least 2, got {args.genes}")
    if args.expr and args.synthetic != "planted":
        raise BootgpuError("bench --synthetic chooses the synthetic matrix; it does not go with --expr")
    if args.synthetic == "modular" and sum(default_module_sizes(args.genes)) > args.genes - 1:
        raise BootgpuError(f"--synthetic modular needs at least 10 genes, got --genes {args.genes}")
    if args.planted is not None and args.synthetic != "planted":
        raise BootgpuError("--planted goes with --synthetic planted (modular plants whole modules)")
    if args.planted is not None and not 0 <= 8 * args.planted < args.genes:
        raise BootgpuError(f"--planted {args.planted} needs more than {8 * args.planted} genes (--genes {args.genes})")


def register_commands(subparsers) -> None:
    """Add `bootgpu bench` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "bench", help="per-stage time and peak memory of each backend and of a plain SciPy reference",
        description="Time one focus gene of a synthetic matrix stage by stage on each backend and on a "
                    "straightforward SciPy/statsmodels reference implementation of the original algorithm, "
                    "each in its own process; print a table, optionally write JSON and a PNG bar chart.",
        epilog="examples:\n  bootgpu bench                                   # 2,000 x 300, numpy (and cupy)\n"
               "  bootgpu bench --genes 8763 --samples 938 --no-reference --json bench.json\n"
               "  bootgpu bench --expr ../shared/data/all_leukemia.tsv.gz --focus '#0' --plot all.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--backend", nargs="+", choices=BENCH_BACKENDS,
                   help="backends to time (default: numpy, and cupy when a CUDA device is usable)")
    p.add_argument("--expr", help="a real expression matrix (TSV/CSV(.gz) or HDF5) instead of the synthetic one")
    p.add_argument("--samples-in-rows", action="store_true", help="--expr holds samples in rows (see bootgpu run)")
    p.add_argument("--focus", help="with --expr: the focus gene, a gene id or #ROW (default #0)")
    p.add_argument("--synthetic", choices=SYNTHETIC, default="planted",
                   help="without --expr, the synthetic matrix: planted (a few planted rewired pairs in a latent-factor "
                        "background, few selected edges) or modular (co-expression modules that rewire as wholes, "
                        "hundreds of thousands of selected edges, like real data with small tails; try --genes 20000 "
                        "--samples 60) (default %(default)s)")
    p.add_argument("--genes", type=int, default=2000, help="genes of the synthetic matrix (default %(default)s)")
    p.add_argument("--samples", type=int, default=300, help="samples (default %(default)s)")
    p.add_argument("--n-bootstrap", type=int, default=1000, help="replicates B (default %(default)s)")
    p.add_argument("--planted", type=int, help="planted rewired pairs per class (default min(300, (genes - 1) // 16))")
    p.add_argument("--memory-budget", help="budget the backends plan with, as for `bootgpu run` (default: as run)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference implementation (no ratios)")
    p.add_argument("--json", help="write the figures as JSON to this file")
    p.add_argument("--plot", help="write a PNG bar chart to this file (needs matplotlib)")
    p.set_defaults(func=cmd_bench)

