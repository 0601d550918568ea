"""A study on disk: parses --focus and --shard, claims the study directory for one study identity
(``bootgpu.study.identity``), checks every file it reuses, and streams the parts (or shards) into the
results file and hubs table.  No compute code: `bootgpu merge` and `status` need only this;
running the focus genes is ``bootgpu.study.run``.

Nothing on disk is reused unless its identity is this study's: a rerun with other parameters,
another input or other focus genes stops before computing anything (``claim_study``), and every
part or shard is checked again when it is read (``check_file_identity``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import h5py

from bootgpu.atomic import atomic_write_bytes, atomic_write_text
from bootgpu.errors import BootgpuError
from bootgpu.expression_io import Expression
from bootgpu.faults import fault_point
from bootgpu.hubs import DEFAULT_RANK_BY, check_rank_by, format_hubs_tsv, format_network_summary_tsv, sort_hub_rows
from bootgpu.study.identity import StudyIdentity, focus_sha256
from bootgpu.study.layout import StudyLayout, check_out_dir
from bootgpu.results_io import (
    assemble_results, focus_record, h5_image, read_hubs_row, read_meta, read_network_metrics, write_focus_table,
)
from bootgpu.study.integrity import (
    check_writable_space, damaged_focus_genes, digest_matches, record_finished, verify_h5,
)
from bootgpu.significance import join_significance, read_significance


FOCUS_HELP = ("gene ids, comma-separated (GENE,GENE); #I for row I and #A:B for rows A..B-1 (0-based; quote "
              "them in a shell, '#0:100', or write --focus=#0:100); all; @FILE for ids or #-forms separated by "
              "newlines, commas or spaces (default: all)")


def parse_focus(spec: str, expr: Expression) -> list[int]:
    """The focus genes as row indices, from ``--focus``: gene ids first.

    A token equal to a gene id always means that gene (so numeric ids such as Entrez's work).
    Row indices need an explicit form: ``#7`` (row 7, 0-based), ``#0:100`` (rows 0..99; either end
    may be left out); ``all`` is every gene.  ``@FILE`` reads tokens separated by newlines, commas,
    tabs or spaces.  Order is kept and duplicates are dropped.
    """
    spec = spec.strip()
    where = "--focus"
    if spec.startswith("@"):
        path = Path(spec[1:])
        where = f"--focus file {path}"
        if not path.is_file():
            raise BootgpuError(f"{where}: not found")
        tokens = [t for t in re.split(r"[\s,]+", path.read_text()) if t]
        if not tokens:
            raise BootgpuError(f"{where} lists no genes")
    else:
        tokens = [t.strip() for t in spec.split(",") if t.strip()]
    rows = expr.gene_rows()
    genes: list[int] = []
    for tok in tokens:
        if tok in rows:
            genes.append(rows[tok])
        elif tok == "all":
            genes.extend(range(expr.n_genes))
        elif match := re.fullmatch(r"#(\d*):(\d*)", tok):
            start = int(match[1]) if match[1] else 0
            stop = int(match[2]) if match[2] else expr.n_genes
            if not start <= stop <= expr.n_genes:
                raise BootgpuError(f"{where}: rows {tok} are outside #0:{expr.n_genes} (the matrix has {expr.n_genes} genes)")
            genes.extend(range(start, stop))
        elif match := re.fullmatch(r"#(\d+)", tok):
            if int(match[1]) >= expr.n_genes:
                raise BootgpuError(f"{where}: row {tok} is out of range (the matrix has {expr.n_genes} genes, #0 to #{expr.n_genes - 1})")
            genes.append(int(match[1]))
        else:
            raise BootgpuError(f"{where}: {_unknown_gene(tok, expr)}")
    if not genes:
        raise BootgpuError(f"{where} selects no genes")
    return list(dict.fromkeys(genes))


def _unknown_gene(tok: str, expr: Expression) -> str:
    """Why ``tok`` matched nothing: the closest ids, and the explicit row form where it may be meant."""
    import difflib

    text = f"no gene has the id {tok!r}"
    if re.fullmatch(r"\d*:\d*", tok):
        return f"{text}; for a range of rows write #{tok}"
    close = difflib.get_close_matches(tok, expr.gene_names, n=3, cutoff=0.6)
    if not close:  # case-insensitive, as gene symbols are often written
        folded = {g.casefold(): g for g in expr.gene_names}
        close = [folded[c] for c in difflib.get_close_matches(tok.casefold(), list(folded), n=3, cutoff=0.6)]
    if close:
        text += f" (closest: {', '.join(close)})"
    if re.fullmatch(r"\d+", tok) and int(tok) < expr.n_genes:
        return f"{text}; for row {tok} (0-based) write #{tok}"
    return text if close else f"{text} among the {expr.n_genes} gene ids"


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise BootgpuError(f"--shard must be K/N with 1 <= K <= N, got {spec!r}")
    return int(match[1]), int(match[2])


def shard_slice(genes: list[int], shard: tuple[int, int]) -> list[int]:
    """Shard K of N: every N-th focus gene from the K-th (K, K + N, K + 2N ... in list order), so
    each task gets an even share of the list's expensive focus genes wherever they sit (neighbours
    in a list of probes are often alike: ALL's rows 100-120 hold two that select a million edges),
    and the sizes differ by at most one."""
    k, n = shard
    return genes[k - 1 :: n]


def study_record(identity: StudyIdentity, focus: list[int]) -> dict:
    """The content of ``DIR/study.json``."""
    import datetime as _dt

    from bootgpu.version import __version__

    return {"bootgpu_version": __version__,
            "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "study_id": identity.study_id, "identity": identity.as_dict(), "focus": [int(g) for g in focus]}  # fmt: skip


def other_study_error(root: Path, diff: str) -> BootgpuError:
    return BootgpuError(f"{root} holds a study with {diff}: use another --out, or --overwrite to discard it")


def recorded_identity(layout: StudyLayout) -> tuple[StudyIdentity, list[int]] | None:
    """(identity, focus list) from DIR/study.json, or None where there is none."""
    record = layout.read_record()
    if record is None:
        return None
    identity = StudyIdentity.from_mapping(record["identity"], str(layout.identity))
    focus = [int(g) for g in record.get("focus", [])]
    if len(focus) != identity.n_focus or focus_sha256(focus) != identity.focus_sha256:
        raise BootgpuError(f"{layout.identity}: its focus list does not match its identity (edited by hand?)")
    return identity, focus


def claim_study(layout: StudyLayout, identity: StudyIdentity, focus: list[int], overwrite: bool = False,
                log=print) -> bool:
    """Make DIR this study's before anything is computed or queued; True if ``overwrite``
    discarded a study that was there.

    A DIR holding another study (different parameters, input, focus genes, format or rng) is
    refused with the first difference, unless ``overwrite``, which discards what that study wrote;
    so is a DIR with results but no study record (an older bootgpu's).  Then ``study.json`` is
    written, exclusively: of two runs racing to claim DIR only one writes, and the other checks.
    """
    check_out_dir(layout.root)
    recorded = recorded_identity(layout)
    if recorded is not None:
        present = True
        diff = recorded[0].difference(identity)
        if diff and not overwrite and grows(recorded, identity, focus):
            atomic_write_text(layout.identity, json.dumps(study_record(identity, focus), indent=1) + "\n")
            new = len(set(focus) - set(recorded[1]))
            log(f"{layout.root}: the study grows by {new} focus gene{'s' if new != 1 else ''} "
                f"({len(recorded[1])} finished or under way are kept)")
            return False
        if diff and not overwrite:
            raise other_study_error(layout.root, diff)
    else:
        present = layout.has_results()
        if present and not overwrite:
            raise BootgpuError(f"{layout.root} holds results without a study record (study.json; written by an older "
                               f"bootgpu?): use another --out, or --overwrite to discard them")
    discarded = overwrite and present
    if discarded:
        layout.discard()
        log(f"--overwrite: discarded the study in {layout.root}")
    if not layout.create_record(study_record(identity, focus)):
        raced = recorded_identity(layout)
        if raced is not None and (diff := raced[0].difference(identity)):
            raise other_study_error(layout.root, diff)
    return discarded


def grows(recorded: tuple[StudyIdentity, list[int]], identity: StudyIdentity, focus: list[int]) -> bool:
    """Whether ``identity`` with ``focus`` is the recorded study with more focus genes: the same
    analysis of the same input, and every recorded focus gene still among them (the identity names
    the analysis; the focus list is its scope)."""
    return recorded[0].same_analysis(identity) and set(recorded[1]) <= set(focus)


def file_identity_difference(path: Path | h5py.File, identity: StudyIdentity) -> str | None:
    """None if the part, shard or results file ``path`` (or the file, open) belongs to the study
    ``identity``, else its first difference (as ``StudyIdentity.difference`` words it)."""
    if read_meta(path, ("study_id",)).get("study_id") == identity.study_id:  # the one attribute, where it matches
        return None
    meta = read_meta(path)
    try:
        theirs = StudyIdentity.from_mapping(meta, str(getattr(path, "filename", path)))
    except BootgpuError:
        return "no study identity: written by an older bootgpu, or not by bootgpu"
    return theirs.difference(identity) or f"study id {meta.get('study_id')}, not {identity.study_id}"


def check_file_identity(path: Path | h5py.File, identity: StudyIdentity, what: str) -> None:
    """A part, shard or results file (its path, or the file open) must belong to the study ``identity``."""
    if diff := file_identity_difference(path, identity):
        raise BootgpuError(f"{getattr(path, 'filename', path)}: this {what} belongs to another study ({diff}): "
                           f"remove it, or rerun with --overwrite")


def finish_study(layout: StudyLayout, meta, gene_names, sample_names, sources, focus,
                 rank_by: str = DEFAULT_RANK_BY, check=None) -> list[dict]:
    """Write results.h5 (streamed from ``sources``, each checked by ``check(path)`` as it is
    read), rewiring_hubs.tsv (ranked by ``rank_by``) and network_summary.tsv, each atomically, and
    last ``finished.json`` (the study is complete); return the hub rows, ranked.  The tables come
    from each focus gene's stored rows, never from its edges."""
    rows: list[dict] = []
    metrics: list[dict] = []
    records: list[dict] = []

    def collect(grp) -> None:
        rows.append(read_hubs_row(grp))
        if (m := read_network_metrics(grp)) is not None:
            metrics.append({"gene_idx": int(grp.name.rsplit("/", 1)[1]), "gene_id": rows[-1]["gene_id"], **m})
        records.append(focus_record(grp, rows[-1], m or {}))

    check_rank_by(rank_by)  # a bad --rank-by fails before anything is written
    need = sum(path.stat().st_size for path in {path for path, _ in sources} if path.exists())
    check_writable_space(layout.root, int(need * 1.05) + (1 << 20), layout.results)
    layout.finished.unlink(missing_ok=True)  # from here until the record is written, the study is not finished
    assemble_results(layout.results, meta, gene_names, sample_names, sources, study_focus=focus, on_copied=collect,
                     finish=lambda h5: write_focus_table(h5, records), check=check)
    fault_point("results")
    out = write_tables(layout, rows, metrics, rank_by)
    fault_point("tables")
    record_finished(layout, meta["scope_id"])
    return out


def write_tables(layout: StudyLayout, rows: list[dict], metrics: list[dict], rank_by: str) -> list[dict]:
    """rewiring_hubs.tsv (``rows`` ranked, with the null's p and q where there is one) and
    network_summary.tsv (``metrics``), atomically; the rows, ranked."""
    rows = join_significance(sort_hub_rows(rows, rank_by), read_significance(layout.significance))
    atomic_write_text(layout.hubs, format_hubs_tsv(rows))
    if metrics:
        names = tuple(k for k in metrics[0] if k not in ("gene_idx", "gene_id"))
        atomic_write_text(layout.network_summary, format_network_summary_tsv(metrics, names))
    return rows


def rebuild_tables(layout: StudyLayout, rank_by: str = DEFAULT_RANK_BY) -> list[dict]:
    """The tables of a study whose results.h5 is in place (and sound) but whose finish was
    interrupted, rebuilt from the rows stored with each focus gene; then ``finished.json``."""
    rows, metrics = [], []
    with h5py.File(layout.results, "r") as h5:
        scope_id = read_meta(layout.results)["scope_id"]
        for name in h5["focus"]:
            grp = h5["focus"][name]
            rows.append(read_hubs_row(grp))
            if (m := read_network_metrics(grp)) is not None:
                metrics.append({"gene_idx": int(name), "gene_id": rows[-1]["gene_id"], **m})
    out = write_tables(layout, rows, metrics, rank_by)
    record_finished(layout, scope_id)
    return out


def move_aside(path: Path, folder: Path) -> Path:
    """Move a damaged file into ``folder`` (kept for a look, never read again); its new path."""
    import time

    folder.mkdir(parents=True, exist_ok=True)
    aside = folder / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}"
    os.replace(path, aside)
    return aside


def salvage_parts(layout: StudyLayout, results: Path, meta: dict, skip: set, keep: bool = True) -> int:
    """A results file's focus genes (those not in ``skip``: a damaged file's sound ones) copied back
    into part files, the file itself moved aside (``keep``: a damaged file, for a look) or removed
    (a study that grows), with its tables and completion record: a resumed run then computes only
    what is missing.  Returns the parts made."""
    layout.parts_dir.mkdir(parents=True, exist_ok=True)
    made = 0
    with h5py.File(results, "r") as src:
        for name in src["focus"]:
            if name in skip or layout.part(int(name)).exists():
                continue

            def fill(h5, name=name):
                m = h5.create_group("meta")
                for key, value in meta.items():
                    m.attrs[key] = value
                src.copy(src["focus"][name], h5.create_group("focus"), name=name)

            atomic_write_bytes(layout.part(int(name)), h5_image(fill))
            made += 1
    if keep:
        move_aside(results, layout.root / "damaged")
    else:
        results.unlink()
    for path in (layout.finished, layout.hubs, layout.network_summary):
        path.unlink(missing_ok=True)
    return made


def remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def merge_shards(out: Path, rank_by: str = DEFAULT_RANK_BY) -> list[dict]:
    """Combine ``shards/*.h5`` into the study's results and hubs table.

    Every shard must belong to the study recorded in ``study.json`` (its identity is checked) and
    hold exactly its slice of the focus list.  The results file is streamed shard by shard and
    focus gene by focus gene (HDF5 object copy; hubs rows from their attributes): memory is the
    gene and sample ids and one hubs row per focus gene; no focus gene's edges are loaded.
    """
    layout = StudyLayout(out)
    check_out_dir(out, "merge")
    recorded = recorded_identity(layout)
    if recorded is None:
        raise BootgpuError(f"{out}: no study record (study.json); run `bootgpu run --shard K/N --out {out}` "
                           f"or `bootgpu sge submit` first")
    identity, focus = recorded
    shards = layout.shards()
    if not shards:
        raise BootgpuError(f"{layout.shards_dir}: no shard files to merge")
    totals = {n for _, n in shards}
    if len(totals) != 1:
        raise BootgpuError(f"{layout.shards_dir}: shard files from different splits {sorted(totals)}")
    n = totals.pop()
    missing = sorted(set(range(1, n + 1)) - {k for k, _ in shards})
    if missing:
        raise BootgpuError(f"{out}: missing shards {', '.join(map(str, missing))} of {n}")
    sources = []
    for k in range(1, n + 1):
        path = shards[(k, n)]
        check_file_identity(path, identity, "shard")
        matches = digest_matches(path)  # a whole-file check; every chunk is read only where it fails
        damaged = [] if matches else verify_h5(path) or (["the file changed since it was written"] if matches is False else [])
        if damaged:
            genes = [g for g in damaged_focus_genes(damaged)]
            which = f"focus gene{'s' if len(genes) > 1 else ''} {_few(genes)}" if genes else "its gene or sample ids"
            raise BootgpuError(f"{path}: damaged in {which} ({damaged[0]}); rebuild it: remove it and rerun "
                               f"`bootgpu run --shard {k}/{n}` with the study's options (or `bootgpu sge submit` again)")
        expected = [str(g) for g in shard_slice(focus, (k, n))]
        with h5py.File(path, "r") as h5:
            held = list(h5["focus"])
        if held != expected:
            raise BootgpuError(f"{path}: holds focus genes {_few(held)}, not this shard's {_few(expected)}")
        sources.extend((path, [name]) for name in expected)
    order = {str(g): i for i, g in enumerate(focus)}
    sources.sort(key=lambda source: order[source[1][0]])  # the results in the study's focus order
    first = shards[(1, n)]
    meta = {k: v for k, v in read_meta(first).items() if k != "shard"}
    with h5py.File(first, "r") as h5:
        gene_names = h5["gene_names"].asstr()[()].tolist()
        sample_names = h5["sample_names"].asstr()[()].tolist()
    rows = finish_study(layout, meta, gene_names, sample_names, sources, focus, rank_by,
                        check=lambda path: check_file_identity(path, identity, "shard"))
    remove_if_empty(layout.parts_dir)
    return rows


def _few(names: list[str], limit: int = 5) -> str:
    return ",".join(names[:limit]) + (f",... ({len(names)})" if len(names) > limit else "") if names else "none"
