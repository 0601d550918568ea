#!/usr/bin/env python3
"""The table scripts/gpu-check ends with: its figures (JSON lines) and warm-up lines, one row each.

    python3 scripts/gpu_check_table.py gpu-check-out/figures.jsonl gpu-check-out/gpu-check.log
"""

from __future__ import annotations

import json
import re
import sys


def rows(figures: list[dict], log: str) -> list[tuple[str, str]]:
    out = []
    warmups = re.findall(r"warm-up: (\d+) focus genes? in ([\d.]+) s on (\w+); ([\d,]+) kernels? compiled", log)
    for (genes, seconds, backend, kernels), what in zip(warmups, ("cold cache (a fresh node)", "warm cache")):
        out.append((f"first run's kernel compilation, {what}", f"{seconds} s ({kernels} kernels compiled, {genes} focus genes)"))
    for fig in figures:
        if "draws_identical" in fig:
            foci = fig.get("focus", [])
            identical = all(f.get("floats_identical") for f in foci)
            worst = max((max(f.get("max_abs_diff", {}).values(), default=0.0) for f in foci), default=0.0)
            out.append((fig.get("label", "backends"), ("equal" if fig.get("ok") else "DIFFERENT")
                        + (", every float identical" if identical else f", floats within {worst:.1e}")))
        elif "mps" in fig:  # scripts/with_mps.py, after the study row it ran
            if fig["mps"] != "on":
                out.append(("CUDA MPS (private daemon)", fig["mps"]))
            else:
                out.append(("CUDA MPS (private daemon) around the row above",
                            f"{fig.get('clients', 0)} client(s) connected, servers: {fig.get('servers') or 'none'}"
                            + ("" if fig.get("stopped") else "; the daemon did not stop")))
        elif "s_per_gene" in fig or "rc" in fig and "label" in fig:
            if fig.get("rc"):
                out.append((f"{fig['label']} on {fig['backend']}", f"FAILED (rc {fig['rc']})"))
                continue
            procs = f", {fig['processes']} processes x {fig['threads']} threads" if "processes" in fig else ""
            out.append((f"{fig['label']} study on {fig['backend']}{procs}",
                        f"{fig['s_per_gene']:.3f} s per focus gene ({fig['genes']} in {fig['compute_s']:.1f} s; "
                        f"{fig['wall_s_per_gene']:.3f} s with process start and input)"))
        elif "sort_over_candidates" in fig:
            out.append((f"{fig['label']} on {fig['backend']}",
                        f"sort {fig['sort_s']:.3f} s, tail candidates {fig['candidates_s']:.3f} s "
                        f"({fig['sort_over_candidates']:.2f}x; {'identical' if fig['identical'] else 'DIFFERENT'})"))
        elif "peak_gib" in fig:
            out.append((f"device peak, {fig['data']} focus {fig['focus']} ({fig['edges']:,} edges)",
                        f"{fig['peak_gib']:.2f} GiB measured, {fig['predicted_gib']:.2f} GiB predicted "
                        f"(prediction / peak = {fig['ratio']:.2f})"))
    return out


def main() -> int:
    figures = []
    with open(sys.argv[1]) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("{"):
                try:
                    figures.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    log = open(sys.argv[2]).read() if len(sys.argv) > 2 else ""
    table = rows(figures, log)
    width = max((len(a) for a, _ in table), default=4)
    print(f"| {'work':<{width}} | figure |")
    print(f"| {'-' * width} | --- |")
    for a, b in table:
        print(f"| {a:<{width}} | {b} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
