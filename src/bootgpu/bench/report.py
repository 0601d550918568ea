"""What `bootgpu bench` shows: the table of stages by implementation, and the PNG bar chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bootgpu.bench.reference import REFERENCE
from bootgpu.bench.stages import STAGES


def _mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:.0f}"


def format_table(report: dict) -> str:
    """Rows = stages; per implementation: seconds, x faster than the reference, peak host (and
    device) memory in MiB."""
    impls = report["implementations"]
    header = ["stage"]
    for impl, info in impls.items():
        header += [f"{impl} s"]
        if impl != REFERENCE and REFERENCE in impls:
            header += [f"{impl} x ref"]
        header += [f"{impl} host MiB"]
        if any(st["peak_device_bytes"] is not None for st in info["stages"].values()):
            header += [f"{impl} device MiB"]
    rows = [header]
    for name in STAGES:
        row = [name]
        for impl, info in impls.items():
            st = info["stages"][name]
            row.append(f"{st['seconds']:.3f}")
            if impl != REFERENCE and REFERENCE in impls:
                ratio = st.get("ratio_vs_reference")
                row.append("-" if ratio is None else f"{ratio:.1f}")
            row.append(_mib(st["peak_host_bytes"]))
            if any(s["peak_device_bytes"] is not None for s in info["stages"].values()):
                row.append(_mib(st["peak_device_bytes"]))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in rows]
    shape = report["shape"]
    out = [f"bootgpu bench: {shape['genes']} genes x {shape['samples']} samples, B = {shape['n_bootstrap']}, "
           f"focus gene {shape.get('focus', 0)} ({report['machine']['cpu']}, {report['machine']['cores']} cores)", *lines]
    if REFERENCE in impls and len(impls) > 1:
        out.append("x ref: the reference's seconds / this backend's seconds for the stage (5.0 = five times faster; "
                   "below 1 = slower than the reference)")
    for impl, info in impls.items():
        out.append(f"{impl}: {info['device']}, {info['n_selected']} selected edges, process peak RSS "
                   f"{_mib(info['process_peak_rss_bytes'])} MiB")
    for impl, chk in report.get("check", {}).items():
        if chk["same_selected_edges"]:
            worst = max(chk.get("max_abs_diff", {}).values(), default=0.0)
            out.append(f"check {impl} vs reference: same selected edges, largest difference {worst:.2e}")
        else:
            out.append(f"check {impl} vs reference: DIFFERENT selected edges {chk['n_selected']}")
    return "\n".join(out)


def write_plot(report: dict, path: Path) -> None:
    """PNG: seconds (log scale) and peak host memory per stage, one bar per implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    impls = list(report["implementations"])
    x = np.arange(len(STAGES))
    width = 0.8 / len(impls)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    panels = (("seconds", "seconds (log scale)", 1.0), ("peak_host_bytes", "peak host memory rise (MiB)", 2**20))
    for ax, (key, label, scale) in zip(axes, panels):
        for i, impl in enumerate(impls):
            vals = [(report["implementations"][impl]["stages"][s][key] or 0) / scale for s in STAGES]
            bars = ax.bar(x + (i - (len(impls) - 1) / 2) * width, vals, width, label=impl)
            if key == "seconds" and impl != REFERENCE and REFERENCE in impls:
                ratios = [report["implementations"][impl]["stages"][s].get("ratio_vs_reference") for s in STAGES]
                ax.bar_label(bars, labels=[(f"{r:.1f}x" if r < 10 else f"{r:.0f}x") if r else "" for r in ratios], fontsize=7)
        ax.set_xticks(x, STAGES, rotation=20)
        ax.set_ylabel(label)
        if key == "seconds":
            ax.set_yscale("log")
    shape = report["shape"]
    fig.suptitle(f"bootgpu bench: {shape['genes']} x {shape['samples']}, B = {shape['n_bootstrap']}, one focus gene "
                 f"(labels: x faster than the reference)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
