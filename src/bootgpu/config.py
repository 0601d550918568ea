"""The analysis parameters, validated once against the data they will run on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from bootgpu.core.split import group_sizes
from bootgpu.errors import BootgpuError

EDGE_SELECTIONS = ("sig_diff", "sig_edges")
STORE_MODES = ("minimal", "common", "full")  # what a focus gene keeps of all pairs (docs/results-format.md)
MIN_GROUP = 4  # the Fisher test needs k - 3 > 0 and the t-test k - 2 > 0
SAFETY_FRACTION = 0.85  # of the memory detected as available, the budget when none is given


@dataclass(frozen=True)
class AnalysisConfig:
    low_frac: float = 0.2
    high_frac: float = 0.2
    n_bootstrap: int = 1000
    bootstrap_frac: float = 0.8
    seed: int = 42
    fdr_alpha: float = 0.05
    ci_alpha: float = 0.05
    edge_selection: str = "sig_diff"
    # which selected edges make a focus gene's networks (bootgpu.networks.EdgeFilter)
    min_effect: float = 0.0
    corr_threshold: float = 0.0
    ci_filter: bool = True
    # minimal: the selected edges; common: plus bit-packed significance masks of every pair; full: plus r
    store: str = "minimal"

    @classmethod
    def from_args(cls, args) -> AnalysisConfig:
        """The parameters as parsed from the command line: ``args`` has one attribute per field
        (``bootgpu.options.ANALYSIS_OPTIONS`` defines an option for each; a command that takes only
        some of them, e.g. ``indices``, gets the defaults for the rest)."""
        defaults = cls()
        return cls(**{f.name: getattr(args, f.name, getattr(defaults, f.name)) for f in fields(cls)})

    def as_dict(self) -> dict:
        return asdict(self)

    def validate(self, n_samples: int) -> tuple[int, int]:
        """Check every parameter; return (k_low, k_high).  Raises BootgpuError naming the option."""
        for name in ("low_frac", "high_frac"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise BootgpuError(f"--{name.replace('_', '-')} must be in (0, 1), got {value}")
        if self.low_frac + self.high_frac > 1.0:
            raise BootgpuError(
                f"--low-frac + --high-frac must be at most 1, got {self.low_frac} + {self.high_frac}"
            )
        if not 0.0 < self.bootstrap_frac <= 1.0:
            raise BootgpuError(f"--bootstrap-frac must be in (0, 1], got {self.bootstrap_frac}")
        if self.n_bootstrap < 2:
            raise BootgpuError(f"--n-bootstrap must be at least 2, got {self.n_bootstrap}")
        for name in ("fdr_alpha", "ci_alpha"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise BootgpuError(f"--{name.replace('_', '-')} must be in (0, 1), got {value}")
        if not 0 <= self.seed < 2**63:
            raise BootgpuError(f"--seed must be in [0, 2**63), got {self.seed}")
        if self.edge_selection not in EDGE_SELECTIONS:
            raise BootgpuError(
                f"--edge-selection must be one of {', '.join(EDGE_SELECTIONS)}, got {self.edge_selection!r}"
            )
        if self.store not in STORE_MODES:
            raise BootgpuError(f"--store must be one of {', '.join(STORE_MODES)}, got {self.store!r}")
        for name, top in (("min_effect", 2.0), ("corr_threshold", 1.0)):  # |delta| <= 2, |r| <= 1
            value = getattr(self, name)
            if not 0.0 <= value < top:
                raise BootgpuError(f"--{name.replace('_', '-')} must be in [0, {top:g}), got {value}")
        k_low, k_high = group_sizes(n_samples, self.low_frac, self.high_frac)
        for label, k, frac in (("LOW", k_low, self.low_frac), ("HIGH", k_high, self.high_frac)):
            if k < MIN_GROUP:
                raise BootgpuError(
                    f"the {label} group has {k} samples (floor({n_samples} x {frac})); "
                    f"at least {MIN_GROUP} are needed: raise the fraction or add samples"
                )
            m = int(k * self.bootstrap_frac)
            if m < 2:
                raise BootgpuError(
                    f"a {label} resample has {m} samples (floor({k} x {self.bootstrap_frac})); at least 2 are needed"
                )
        return k_low, k_high
