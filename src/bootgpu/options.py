"""Command-line options that several commands share, each defined once.

``run``, ``plan``, ``indices`` and ``sge submit`` add the analysis and input options from here, and
``sge submit`` writes them back out from the same definitions: to the array tasks' ``bootgpu run``
and into the command that submits the study again.  An option added here reaches all of them.
Nothing here imports the command line (``bootgpu.cli``); the CLI and ``bootgpu.sge`` import this.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bootgpu.errors import BootgpuError
from bootgpu.config import EDGE_SELECTIONS, SAFETY_FRACTION, STORE_MODES, AnalysisConfig


@dataclass(frozen=True)
class Option:
    """One option: its flags and ``argparse.add_argument`` keywords, and how a value is written back
    as command-line words.  ``resubmit`` False marks an option about one invocation only (e.g.
    ``--dry-run``), which a command that repeats this one leaves out."""

    flags: tuple[str, ...]
    settings: Mapping = field(default_factory=dict)
    resubmit: bool = True

    @property
    def dest(self) -> str:
        return self.settings.get("dest") or self.flags[0].lstrip("-").replace("-", "_")

    @property
    def is_switch(self) -> bool:
        return self.settings.get("action") in ("store_true", "store_false")

    def add_to(self, parser) -> argparse.Action:
        return parser.add_argument(*self.flags, **self.settings)

    def argv(self, value, joined: bool = False) -> list[str]:
        """``value`` as command-line words: none for None (or a switch at its default), the flag alone
        for a switch that is set (store_true: True; store_false: False), else ``[FLAG, VALUE]``, or
        ``[FLAG=VALUE]`` when ``joined`` (one word)."""
        if self.is_switch:  # the flag when the value is not the switch's default
            default = self.settings.get("action") == "store_false"
            return [self.flags[0]] if value is not None and bool(value) != default else []
        if value is None:
            return []
        return [f"{self.flags[0]}={value}"] if joined else [self.flags[0], str(value)]


def option(*flags: str, resubmit: bool = True, **settings) -> Option:
    return Option(flags, MappingProxyType(settings), resubmit)


def add_options(parser, options: Iterable[Option]) -> None:
    for opt in options:
        opt.add_to(parser)


def options_argv(options: Iterable[Option], args: argparse.Namespace, joined: bool = False,
                 values: Mapping | None = None) -> list[str]:
    """The words that repeat ``options`` as parsed into ``args`` (in definition order); ``values``
    replaces some of them by dest (a path made absolute, a count decided since)."""
    values = values or {}
    words: list[str] = []
    for opt in options:
        if opt.resubmit:
            words += opt.argv(values.get(opt.dest, getattr(args, opt.dest)), joined)
    return words


_D = AnalysisConfig()
# the split and the draws: what `bootgpu indices` needs too
DRAW_OPTIONS = (
    option("--low-frac", type=float, default=_D.low_frac, help="fraction of samples in LOW (default %(default)s)"),
    option("--high-frac", type=float, default=_D.high_frac, help="fraction in HIGH (default %(default)s)"),
    option("--n-bootstrap", type=int, default=_D.n_bootstrap, help="replicates B (default %(default)s)"),
    option("--bootstrap-frac", type=float, default=_D.bootstrap_frac, help="resample size / group size (default %(default)s)"),
    option("--seed", type=int, default=_D.seed, help="seed of the draws (default %(default)s)"),
)  # fmt: skip
# the tests, BH and which edges are bootstrapped
TEST_OPTIONS = (
    option("--fdr-alpha", type=float, default=_D.fdr_alpha, help="BH level (default %(default)s)"),
    option("--ci-alpha", type=float, default=_D.ci_alpha, help="1 - CI coverage (default %(default)s)"),
    option("--edge-selection", choices=EDGE_SELECTIONS, default=_D.edge_selection, help="edges to bootstrap (default %(default)s)"),
)  # fmt: skip
# which bootstrapped edges make each focus gene's networks (bootgpu.networks.EdgeFilter, docs/networks.md)
NETWORK_OPTIONS = (
    option("--min-effect", type=float, default=_D.min_effect,
           help="networks keep edges with |delta| >= this (default %(default)s)"),
    option("--corr-threshold", type=float, default=_D.corr_threshold,
           help="an edge is present in LOW (HIGH) when q_low < alpha and |r_low| >= this (default %(default)s)"),
    option("--no-ci-filter", dest="ci_filter", action="store_false",
           help="networks keep every bootstrapped edge, not only those whose CI excludes 0"),
)  # fmt: skip
# what each focus gene keeps of all pairs besides its selected edges (docs/results-format.md)
STORE_OPTIONS = (
    option("--store", choices=STORE_MODES, default=_D.store,
           help="minimal: the selected edges; common: plus bit-packed sig_low/sig_high/sig_diff masks of every "
                "gene pair (~3 bits a pair, compressed); full: plus every pair's r_low and r_high (float32, "
                "8 bytes a pair: 300 MB a focus gene at 8,763 genes) (default %(default)s)"),
)  # fmt: skip
ANALYSIS_OPTIONS = (*DRAW_OPTIONS, *TEST_OPTIONS, *NETWORK_OPTIONS, *STORE_OPTIONS)  # one per AnalysisConfig field (from_args)


SAMPLES_IN_ROWS = option(
    "--samples-in-rows", action="store_true",
    help="the matrix holds samples in rows and genes in columns (TSV/CSV: sample ids in the first column; "
         "HDF5: /expr is samples x genes)",
)  # fmt: skip


GENES_IN_ROWS = option(
    "--genes-in-rows", action="store_true",
    help="the matrix holds genes in rows, as it should (say so where it looks transposed: more samples than genes "
         "with sample-like row ids or gene-like column ids)",
)  # fmt: skip
LAYER = option(
    "--layer",
    help="AnnData .h5ad input: the layer to read (default: X); cells are the samples, var_names the gene ids",
)  # fmt: skip


SEP = option(
    "--sep", choices=("auto", "tab", "comma", "semicolon"), default="auto",
    help="field separator of a TSV/CSV file (default %(default)s: detected from the header line)",
)  # fmt: skip
BUDGET_HELP = (f"bytes, e.g. 6G or 1500M (default: {SAFETY_FRACTION:.0%} of the memory this process may use: free "
               f"RAM, cgroup and ulimit on CPU, free GPU memory on CuPy; env BOOTGPU_MEMORY_BUDGET)").replace("%", "%%")
ESTIMATE_TASKS = 16  # Grid Engine array tasks `bootgpu plan`'s time estimate shows when none are given
BACKEND_HELP = "auto: CuPy when a CUDA device is usable, else NumPy (default %(default)s)"


def input_options(required: bool = True, what: str = "") -> tuple[Option, ...]:
    """--expr (its help says what the matrix is for), --samples-in-rows and --sep."""
    return (
        option("--expr", required=required,
               help=what or "expression matrix: TSV/CSV(.gz) genes x samples, or HDF5 (/expr, /gene_names, /sample_names)"),
        SAMPLES_IN_ROWS, GENES_IN_ROWS, SEP, LAYER,
    )  # fmt: skip


# What `bootgpu run` needs besides the study's input and focus genes to compute the same results:
# the options a Grid Engine task passes on to it.
RUN_FORWARDED = (*ANALYSIS_OPTIONS, SAMPLES_IN_ROWS, GENES_IN_ROWS, SEP, LAYER)


def add_analysis_options(parser) -> None:
    add_options(parser, ANALYSIS_OPTIONS)


def add_input_options(parser, required: bool = True, what: str = "") -> None:
    add_options(parser, input_options(required, what))


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 focus gene', '2 focus genes' (``many``: an irregular plural)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def log(line: str) -> None:
    """A progress or warning line on stderr (stdout is the command's result)."""
    print(line, file=sys.stderr, flush=True)


def read_input(args: argparse.Namespace, path=None):
    """The expression matrix of --expr (or ``path``), genes x samples, with a warning on stderr when
    it looks transposed."""
    from bootgpu.expression_io import orientation, read_expression

    samples_in_rows = getattr(args, "samples_in_rows", False)
    genes_in_rows = getattr(args, "genes_in_rows", False)
    if samples_in_rows and genes_in_rows:
        raise BootgpuError("give --samples-in-rows or --genes-in-rows, not both")
    sep = getattr(args, "sep", "auto")
    expr = read_expression(path or args.expr, samples_in_rows=samples_in_rows, sep=None if sep == "auto" else sep,
                           layer=getattr(args, "layer", None))
    if not samples_in_rows and not genes_in_rows:
        clear, why = orientation(expr)
        if clear:
            raise BootgpuError(why)
        if why:
            log(f"bootgpu: warning: {why}")
    return expr
