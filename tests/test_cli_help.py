"""The command line as a new user meets it: each subcommand's help lists only its own options, each
with a help line that states its default; the README's defaults are the ones used; input forms the
way R and spreadsheets write them are read (or refused with a hint) through the commands."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bootgpu import __version__
from bootgpu.cli import build_parser, main
from bootgpu.config import SAFETY_FRACTION
from bootgpu.options import ANALYSIS_OPTIONS, DRAW_OPTIONS, NETWORK_OPTIONS, STORE_OPTIONS, TEST_OPTIONS

README = Path(__file__).resolve().parents[1] / "README.md"


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, sub in action.choices.items():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:  # `bootgpu sge submit`
            out.update({f"{name} {n}": p for n, p in nested[0].choices.items()})
        else:
            out[name] = sub
    return out


def flags_of(parser) -> set[str]:
    return {flag for a in parser._actions for flag in a.option_strings if flag.startswith("--")} - {"--help"}


def test_draw_only_commands_list_no_test_network_or_store_options():
    parsers = subparsers()
    not_theirs = {opt.flags[0] for opt in (*TEST_OPTIONS, *NETWORK_OPTIONS, *STORE_OPTIONS)}
    for name in ("indices", "plan"):
        flags = flags_of(parsers[name])
        assert {opt.flags[0] for opt in DRAW_OPTIONS} <= flags
        assert not flags & not_theirs, (name, flags & not_theirs)
        text = parsers[name].format_help()
        assert not any(flag in text for flag in not_theirs), name
    assert {opt.flags[0] for opt in ANALYSIS_OPTIONS} <= flags_of(parsers["run"])


def test_every_option_has_help_that_states_its_default():
    missing = []
    for name, parser in subparsers().items():
        for action in parser._actions:
            if not action.option_strings or action.option_strings == ["-h", "--help"]:
                continue
            flag = action.option_strings[-1]
            if not (action.help or "").strip():
                missing.append(f"{name} {flag}: no help")
                continue
            has_default = action.default not in (None, False, True, argparse.SUPPRESS) and action.nargs != 0
            if has_default and "default" not in action.help:
                missing.append(f"{name} {flag}: default {action.default!r} not stated")
    assert not missing, "\n".join(missing)


def test_help_shows_the_defaults_the_commands_use():
    """What --help prints as a default is the value a run gets (one source: the option definitions)."""
    parser = build_parser()
    args = parser.parse_args(["run", "--demo"])
    text = subparsers()["run"].format_help()
    text = text[text.index("options:"):]  # the option lines, not the usage
    for opt in ANALYSIS_OPTIONS:
        default = opt.settings.get("default")
        if default is None or opt.is_switch:
            continue
        assert getattr(args, opt.dest) == default
        shown = re.search(r"\n  " + re.escape(opt.flags[0]) + r"\b.*?\(default ([^)\s]+)", text, re.S)
        assert shown and shown.group(1) == str(default), (opt.flags[0], shown and shown.group(1))


def test_readme_defaults_agree_with_the_command_line():
    """The README's `bootgpu run` synopsis shows each analysis option with its default value, and
    its memory paragraph the budget fraction the planner uses."""
    text = README.read_text()
    block = text[text.index("## Command line"):text.index("- Input:")]
    synopsis = block[block.index("bootgpu run --expr"):block.index("bootgpu run --demo")]
    shown = dict(re.findall(r"(--[a-z-]+) ([0-9.]+|sig_diff)\b", synopsis))
    defaults = {opt.flags[0]: opt.settings.get("default") for opt in ANALYSIS_OPTIONS}
    checked = 0
    for flag, value in shown.items():
        if flag in defaults:
            assert str(defaults[flag]) == value, (flag, value, defaults[flag])
            checked += 1
    assert checked >= 8, shown
    fraction = re.search(r"else (\d+)% of what the process may allocate", text)
    assert fraction and int(fraction.group(1)) == round(SAFETY_FRACTION * 100)
    assert f"{SAFETY_FRACTION:.0%}" in subparsers()["run"].format_help()


def test_version():
    proc = subprocess.run([sys.executable, "-m", "bootgpu", "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == f"bootgpu {__version__}"


def _every_page():
    """Every parser a user can ask --help of: each subcommand, and each of theirs (``sge``)."""
    parser = build_parser()
    pages = {}

    def walk(p, prefix):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    pages[f"{prefix}{name}"] = sub
                    walk(sub, f"{prefix}{name} ")

    walk(parser, "")
    return pages


def test_every_help_page_has_a_description_its_options_and_examples():
    pages = _every_page()
    assert {"run", "null", "merge", "info", "plan", "indices", "convert", "bench", "top", "export", "report",
            "status", "sge", "sge submit", "warmup"} <= set(pages)
    for name, page in pages.items():
        text = page.format_help()
        assert page.description and len(page.description) > 20, name
        assert all(len(line) <= 100 for line in page.description.splitlines()), name
        assert "``" not in page.description and "example" in (page.epilog or "").lower(), name
        assert text.startswith(f"usage: bootgpu {name}"), name


def test_the_readme_and_the_help_agree():
    """What the README says of the options the help describes: every backend the help offers, and
    the forms of --focus @FILE."""
    readme = README.read_text()
    run = subparsers()["run"]
    backends = next(a for a in run._actions if "--backend" in a.option_strings).choices
    assert f"--backend {'|'.join(backends)}" in readme
    focus = next(a for a in run._actions if "--focus" in a.option_strings).help
    assert "newlines, commas or spaces" in focus and "newlines, commas or spaces" in readme


def _matrix_lines(sep: str, r_header: bool = False) -> str:
    samples = [f"s{j}" for j in range(30)]
    header = sep.join(samples if r_header else ["gene", *samples])
    rows = [sep.join([f"g{i}", *(f"{(i * 7 + j * 13) % 17 + 0.5 * i}" for j in range(30))]) for i in range(12)]
    return "\n".join([header, *rows]) + "\n"


@pytest.mark.parametrize("name,sep,argv,r_header", [
    ("semi.csv", ";", [], False),
    ("r_write_table.tsv", "\t", [], True),
    ("comma.txt", ",", ["--sep", "comma"], False),
])  # fmt: skip
def test_input_forms_through_the_command_line(tmp_path, capsys, name, sep, argv, r_header):
    path = tmp_path / name
    path.write_text(_matrix_lines(sep, r_header))
    assert main(["plan", "--expr", str(path), *argv, "--memory-budget", "1G", "--backend", "numpy"]) == 0
    assert "12 genes x 30 samples" in capsys.readouterr().out


def test_excel_workbook_refused_through_the_command_line(tmp_path, capsys):
    path = tmp_path / "expr.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    assert main(["plan", "--expr", str(path), "--backend", "numpy"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "CSV" in err and len(err.strip().splitlines()) == 1


def test_wrong_sep_names_the_file_and_what_to_do(tmp_path, capsys):
    path = tmp_path / "semi.csv"
    path.write_text(_matrix_lines(";"))
    assert main(["plan", "--expr", str(path), "--sep", "tab", "--backend", "numpy"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
