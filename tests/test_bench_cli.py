"""`bootgpu bench`: per-stage figures for each backend and the reference, ratios, JSON, PNG."""

from __future__ import annotations

import json

import pytest

from bootgpu.backends.cupy_backend import cupy_unusable_reason
from bootgpu.bench import STAGES, format_table
from bootgpu.cli import main

STAGE_KEYS = {"seconds", "peak_host_bytes", "peak_device_bytes"}


def _bench(tmp_path, *args):
    out = tmp_path / "bench.json"
    assert main(["bench", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def _check_report(report, backends):
    assert list(report["implementations"]) == [*backends, "reference"]
    for impl, info in report["implementations"].items():
        assert list(info["stages"]) == list(STAGES)
        for name, st in info["stages"].items():
            assert STAGE_KEYS <= set(st), (impl, name)
            assert st["seconds"] > 0 and st["peak_host_bytes"] >= 0, (impl, name)
            if impl != "reference":
                assert st["ratio_vs_reference"] == pytest.approx(
                    report["implementations"]["reference"]["stages"][name]["seconds"] / st["seconds"])
        assert info["process_peak_rss_bytes"] > 0


def test_bench_numpy_2000x300_within_a_minute_with_ratios_json_and_plot(tmp_path, capsys):
    png = tmp_path / "bench.png"
    report = _bench(tmp_path, "--backend", "numpy", "--genes", "2000", "--samples", "300", "--plot", str(png))
    _check_report(report, ["numpy"])
    assert report["shape"] == {**report["shape"], "genes": 2000, "samples": 300, "n_bootstrap": 1000}
    numpy = report["implementations"]["numpy"]
    assert all(st["peak_device_bytes"] is None for st in numpy["stages"].values())  # a host backend
    assert numpy["staged_matches_pipeline"]
    # the reference computes the same analysis: same selected edges, same numbers (float32 output)
    check = report["check"]["numpy"]
    assert check["same_selected_edges"] and check["n_selected"][0] > 0
    assert max(check["max_abs_diff"].values()) < 1e-6
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "numpy x ref" in printed and "focus_gene" in printed and "same selected edges" in printed
    assert "below 1 = slower than the reference" in printed


def test_bench_on_a_real_matrix_and_focus_gene(tmp_path, write_demo_tsv):
    """`--expr` and `--focus`: the same analysis as the reference on real data (ALL probes)."""
    expr = write_demo_tsv(tmp_path / "all300.tsv", 300)
    report = _bench(tmp_path, "--backend", "numpy", "--expr", str(expr), "--focus", "1007_s_at", "--n-bootstrap", "50",
                    "--no-reference")
    assert report["shape"]["genes"] == 300 and report["shape"]["samples"] == 128
    assert report["shape"]["focus"] == "1007_s_at" and report["shape"]["data"] == str(expr.resolve())
    report = _bench(tmp_path, "--backend", "numpy", "--expr", str(expr), "--focus", "#1", "--n-bootstrap", "50")
    check = report["check"]["numpy"]
    assert check["same_selected_edges"] and check["n_selected"][0] > 0
    assert max(check["max_abs_diff"].values()) < 1e-6
    assert "--expr" in report["command"] and "--focus #1" in report["command"]


def test_bench_on_the_modular_synthetic_matrix_agrees_with_the_reference(tmp_path):
    """`--synthetic modular`: whole modules rewire, so far more edges are selected than planted pairs
    (each sign_change/disappear/new module contributes pairs), and the reference computes the same
    ones.  boot_p included: deltas that are exactly 0 (r = 1 in both groups) count as neither sign."""
    from bootgpu.synthetic import default_module_sizes

    report = _bench(tmp_path, "--backend", "numpy", "--synthetic", "modular", "--genes", "600", "--samples", "60",
                    "--n-bootstrap", "50")
    assert report["shape"]["data"] == "bootgpu.synthetic.modular_matrix(genes, samples)"
    assert report["shape"]["planted_per_class"] is None
    sizes = default_module_sizes(600)
    check = report["check"]["numpy"]
    assert check["same_selected_edges"] and check["n_selected"][0] > sizes[0] * (sizes[0] // 2) // 2
    assert max(check["max_abs_diff"].values()) < 1e-6
    assert "--synthetic modular" in report["command"]


def test_bench_table_lists_every_stage_of_each_implementation(tmp_path):
    report = _bench(tmp_path, "--backend", "numpy", "strict", "--genes", "150", "--samples", "60", "--n-bootstrap", "50")
    _check_report(report, ["numpy", "strict"])
    lines = format_table(report).splitlines()
    assert [line.split()[0] for line in lines[2:2 + len(STAGES)]] == list(STAGES)
    assert all(report["check"][impl]["same_selected_edges"] for impl in ("numpy", "strict"))


def test_bench_without_reference_has_no_ratios(tmp_path):
    report = _bench(tmp_path, "--backend", "numpy", "--genes", "120", "--samples", "60", "--n-bootstrap", "20", "--no-reference")
    assert list(report["implementations"]) == ["numpy"] and "check" not in report
    assert all("ratio_vs_reference" not in st for st in report["implementations"]["numpy"]["stages"].values())


def test_bench_bad_options_are_one_line_errors(tmp_path, capsys):
    assert main(["bench", "--samples", "10"]) == 2
    assert "LOW group has 2 samples" in capsys.readouterr().err
    assert main(["bench", "--genes", "100", "--planted", "20"]) == 2
    assert main(["bench", "--synthetic", "modular", "--genes", "5"]) == 2
    assert main(["bench", "--synthetic", "modular", "--planted", "3"]) == 2
    assert "--planted 20" in capsys.readouterr().err
    if cupy_unusable_reason() is not None:
        assert main(["bench", "--backend", "cupy"]) == 2
        assert "--backend cupy is not usable" in capsys.readouterr().err


@pytest.mark.gpu
def test_bench_cupy_reports_device_peak_memory(tmp_path):
    if (reason := cupy_unusable_reason()) is not None:
        pytest.skip(f"cupy backend not usable: {reason}")
    report = _bench(tmp_path, "--backend", "numpy", "cupy", "--genes", "2000", "--samples", "300")
    _check_report(report, ["numpy", "cupy"])
    cupy = report["implementations"]["cupy"]
    assert all(st["peak_device_bytes"] is not None for st in cupy["stages"].values())
    assert cupy["stages"]["focus_gene"]["peak_device_bytes"] > 0
    assert report["check"]["cupy"]["same_selected_edges"]
