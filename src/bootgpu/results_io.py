"""The results file (HDF5) and its per-focus-gene groups; layout in docs/results-format.md.

Every file is written under a temporary name and renamed when complete, so a killed run leaves
either a whole file or none.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from bootgpu.version import __version__
from bootgpu.atomic import atomic_path, atomic_write_bytes
from bootgpu.checksums import create_checked
from bootgpu.faults import fault_point
from bootgpu.errors import BootgpuError
from bootgpu.hubs import hub_row
from bootgpu.results_schema import (
    CHANGE_LABELS, EDGE_FLOAT_FIELDS, PAIR_MASK_FIELDS, PAIR_VALUE_FIELDS, FocusResult, StoredNetwork, modern_name,
)

FOCUS_ATTRS = (
    "gene_name", "k_low", "k_high", "n_tests", "n_nan", "n_sig_low", "n_sig_high",
    "n_sig_diff", "n_sig_edges", "n_robust",
)  # fmt: skip
EDGE_DATASETS = ("gene_i", "gene_j", *EDGE_FLOAT_FIELDS, "change")
_STR = h5py.string_dtype()


def _dataset(group, name, data):
    kwargs = {"track_times": False}
    if data.size > 1024:
        kwargs.update(compression="gzip", compression_opts=4, shuffle=True)
    create_checked(group, name, data, **kwargs)


def write_focus(parent: h5py.Group, result: FocusResult, gene_names) -> None:
    """Group ``focus/<index>`` with the focus gene's counts (attrs), its hubs-table row (attr
    ``hubs_row``, JSON: merging a study never has to read its edges again) and selected edges."""
    grp = parent.create_group(str(result.focus), track_order=True)
    grp.attrs["gene_name"] = gene_names[result.focus]
    for key in FOCUS_ATTRS[1:]:
        grp.attrs[key] = int(result.attrs[key])
    grp.attrs["hubs_row"] = json.dumps(hub_row(result, gene_names))
    grp.attrs["counts"] = json.dumps({key: int(result.attrs[key]) for key in FOCUS_ATTRS[1:]})  # one read for all
    if result.attrs.get("skipped"):  # not analysed (pipeline.skipped_result): why
        grp.attrs["skipped"] = str(result.attrs["skipped"])
    _dataset(grp, "low_samples", result.low_samples.astype(np.int32))
    _dataset(grp, "high_samples", result.high_samples.astype(np.int32))
    for key in EDGE_DATASETS:
        _dataset(grp, key, result.edges[key])
    grp["change"].attrs["labels"] = np.array(CHANGE_LABELS, dtype=object).astype(_STR)
    if result.network is not None:
        write_network(grp, result.network)
    if result.pairs is not None:
        write_pairs(grp, result.pairs, len(gene_names))


def write_pairs(grp: h5py.Group, pairs: dict, n_genes: int) -> None:
    """Group ``pairs`` (``--store common``/``full``): every gene pair in condensed order (i < j,
    row-major: pair (i, j) at i * (2G - i - 1) / 2 + j - i - 1), the significance masks packed 8
    pairs a byte (``np.packbits``, first pair in the high bit) and, with ``full``, r_low and r_high."""
    out = grp.create_group("pairs", track_order=True)
    for key, value in pairs.items():
        chunks = (min(value.shape[0], 1 << 20),) if value.size else None
        # masks compress well at any level; r (full) is 8 bytes a pair, where level 6 costs ~4x the time of 1
        level = 6 if key in PAIR_MASK_FIELDS else 1
        create_checked(out, key, value, compression="gzip", compression_opts=level, shuffle=value.dtype.itemsize > 1,
                           chunks=chunks, track_times=False)
    out.attrs["n_pairs"] = n_genes * (n_genes - 1) // 2
    out.attrs["order"] = "condensed: pairs (i, j), i < j, row-major"
    out.attrs["bit_order"] = "np.packbits: big (first pair in the high bit)"


def read_pairs(grp: h5py.Group, n_genes: int) -> dict | None:
    """A focus gene's stored pairs (``write_pairs``) unpacked: the masks as bool arrays of
    n_genes (n_genes - 1) / 2 pairs, r as float32; None where the study stored ``minimal``."""
    if "pairs" not in grp:
        return None
    n_pairs = n_genes * (n_genes - 1) // 2
    src = grp["pairs"]
    out = {key: np.unpackbits(src[key][()], count=n_pairs).astype(bool) for key in PAIR_MASK_FIELDS}
    out.update({key: src[key][()] for key in PAIR_VALUE_FIELDS if key in src})
    return out


NETWORKS = ("low", "high", "diff")


def write_network(grp: h5py.Group, net) -> None:
    """Group ``network``: ``metrics`` (one compound row, every metric of ``networks.METRIC_NAMES``),
    ``degree_low/high/diff`` (int32 per gene), ``partners`` and ``top_rewired`` (compound rows)."""
    out = grp.create_group("network", track_order=True)
    names = list(net.metrics)
    dtype = np.dtype([(k, np.int64 if isinstance(net.metrics[k], (int, np.integer, bool)) else np.float64) for k in names])
    create_checked(out, "metrics", np.array([tuple(net.metrics[k] for k in names)], dtype=dtype))
    # the same row as JSON: HDF5 converts a 162-field compound type in ~9 ms a read, an attribute in
    # ~0.1 ms, which is what merge, the API and the report read for every focus gene
    out["metrics"].attrs["json"] = json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in net.metrics.items()})
    for which in NETWORKS:
        create_checked(out, f"degree_{which}", net.degrees[which].astype(np.int32), chunks=True, compression="gzip",
                       compression_opts=4, shuffle=True)
    for key, table in (("partners", net.partners), ("top_rewired", net.top_rewired)):
        fields = list(table)
        rows = np.empty(len(table[fields[0]]), dtype=[(f, np.asarray(table[f]).dtype) for f in fields])
        for f in fields:
            rows[f] = table[f]
        create_checked(out, key, rows)


def read_network(grp: h5py.Group) -> StoredNetwork | None:
    """The stored networks of a focus gene (``write_network``), None if it has none."""
    if "network" not in grp:
        return None
    net = grp["network"]
    tables = {key: {f: net[key][f] for f in net[key].dtype.names} for key in ("partners", "top_rewired")}
    degrees = {which: net[f"degree_{which}"][()] for which in NETWORKS}
    return StoredNetwork(read_network_metrics(grp), degrees, tables["partners"], tables["top_rewired"])


def read_network_metrics(grp: h5py.Group) -> dict | None:
    """The network metrics stored with a focus gene (name -> int or float), None if it has none."""
    if "network" not in grp:
        return None
    metrics = grp["network/metrics"]
    if "json" in metrics.attrs:
        return {modern_name(k): v for k, v in json.loads(metrics.attrs["json"]).items()}
    row = metrics[0]
    return {modern_name(name): row[name].item() for name in row.dtype.names}


def focus_record(grp: h5py.Group, hubs_row: dict | None = None, metrics: dict | None = None) -> dict:
    """A focus gene's row of the study table (``Results.focus_genes``): gene_idx, gene_id, its counts
    (``FOCUS_ATTRS``), its hubs-table row (without the rank) and its network metrics, from the
    attributes stored with it (no edges read); ``hubs_row``/``metrics``: those two already read."""
    rec = {"gene_idx": int(grp.name.rsplit("/", 1)[1]), "gene_id": as_text(grp.attrs["gene_name"])}
    if "counts" in grp.attrs:
        rec.update(json.loads(grp.attrs["counts"]))
    else:  # written before the counts were one attribute
        rec.update({key: int(grp.attrs[key]) for key in FOCUS_ATTRS[1:]})
    if hubs_row is None and "hubs_row" in grp.attrs:
        hubs_row = read_hubs_row(grp)
    rec.update({k: v for k, v in (hubs_row or {}).items() if k not in rec and k != "rank"})
    metrics = read_network_metrics(grp) if metrics is None else metrics
    rec.update({k: v for k, v in (metrics or {}).items() if k not in rec})
    return rec


def as_text(value) -> str:
    """An HDF5 string attribute (bytes or str) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


FOCUS_TABLE = "focus_table"  # /focus_table: every focus gene's focus_record, as JSON, written with the file


def write_focus_table(h5: h5py.File, records: list[dict]) -> None:
    """``/focus_table``: the study table in one dataset (UTF-8 JSON of {"columns", "rows"}, gzip), so
    reading it does not open every focus gene's group (seconds rather than minutes at 20,000)."""
    columns = list(dict.fromkeys(k for rec in records for k in rec))
    rows = [[rec.get(c) for c in columns] for rec in records]
    data = np.frombuffer(json.dumps({"columns": columns, "rows": rows}).encode(), dtype=np.uint8)
    create_checked(h5, FOCUS_TABLE, data, compression="gzip", compression_opts=4)


def read_focus_table(h5: h5py.File) -> list[dict] | None:
    """The records of ``write_focus_table`` (None where the file has none: then read them per group)."""
    if FOCUS_TABLE not in h5:
        return None
    table = json.loads(h5[FOCUS_TABLE][()].tobytes())
    columns = [modern_name(c) for c in table["columns"]]
    return [dict(zip(columns, row)) for row in table["rows"]]


def read_focus(grp: h5py.Group) -> FocusResult:
    attrs = {key: (grp.attrs[key] if key == "gene_name" else int(grp.attrs[key])) for key in FOCUS_ATTRS}
    if "skipped" in grp.attrs:
        attrs["skipped"] = as_text(grp.attrs["skipped"])
    edges = {key: grp[key][()] for key in EDGE_DATASETS}
    edges["robust"] = (edges["ci_low"] > 0) | (edges["ci_high"] < 0)
    return FocusResult(int(grp.name.rsplit("/", 1)[1]), attrs, grp["low_samples"][()], grp["high_samples"][()], edges,
                       network=read_network(grp))


def write_meta(h5: h5py.File, meta: dict, gene_names, sample_names, study_focus=None) -> None:
    """``/meta`` attributes (scalars and short strings only: HDF5 refuses attributes over 64 KiB),
    ``/gene_names``, ``/sample_names`` and, for a whole study, ``/study_focus``."""
    m = h5.create_group("meta")
    for key, value in meta.items():
        m.attrs[key] = value
    create_checked(h5, "gene_names", np.array(gene_names, dtype=object), dtype=_STR)
    create_checked(h5, "sample_names", np.array(sample_names, dtype=object), dtype=_STR)
    if study_focus is not None:
        _dataset(h5, "study_focus", np.asarray(study_focus, dtype=np.int32))


def study_meta(identity, backend_name: str, device: str) -> dict:
    """The /meta attributes of a part, shard or results file: the study identity (see
    ``bootgpu.study.identity``) and what computed it."""
    from bootgpu.study.identity import identity_attrs

    return {"bootgpu_version": __version__, "backend": backend_name, "device": device, **identity_attrs(identity)}


def read_meta(path: os.PathLike | h5py.File, keys: tuple[str, ...] | None = None) -> dict:
    """The /meta attributes of a results, shard or part file (nothing else is read), given by its
    path or open; with ``keys``, only those of them that the file has (one attribute reads in
    ~0.1 ms, all 26 of a study's in ~3 ms: a finish checks thousands of parts)."""
    try:
        with contextlib.nullcontext(path) if isinstance(path, h5py.File) else h5py.File(path, "r") as h5:
            attrs = h5["meta"].attrs
            names = list(attrs) if keys is None else [k for k in keys if k in attrs]
            return {k: (v.decode() if isinstance(v := attrs[k], bytes) else v) for k in names}
    except (OSError, KeyError) as exc:
        raise BootgpuError(f"{getattr(path, 'filename', path)}: not a readable bootgpu results file ({exc})") from None


def write_results(path: os.PathLike, meta: dict, gene_names, sample_names, results, study_focus=None) -> None:
    """One results file holding ``results`` (FocusResult iterable), written atomically."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as h5:
            write_meta(h5, meta, gene_names, sample_names, study_focus)
            focus = h5.create_group("focus", track_order=True)
            for result in results:
                write_focus(focus, result, gene_names)


def assemble_results(path: os.PathLike, meta: dict, gene_names, sample_names, sources, study_focus=None,
                     on_copied=None, finish=None, check=None) -> None:
    """Write a results file (atomically) from the focus groups of other files, streamed.

    ``sources`` yields ``(file, names)``: the groups ``/focus/<name>`` of each file are copied in
    that order (HDF5's object copy: datasets move chunk by chunk, never a whole study in memory).
    ``on_copied(group)``, if given, sees each focus gene's group as it is copied, so a caller
    builds its tables in the same pass from the stored rows (``read_hubs_row``,
    ``read_network_metrics``) without reading any edges.  ``check(file)``, if given, runs on each
    source file, open, just before it is read (its identity: a file replaced during the run is caught).
    An error of the filesystem (a full disk) is one line, and no file is left under ``path``.
    """
    opened: dict = {}  # the source files open now, the most recently read last (a few at a time)
    checked: set = set()
    try:
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w", track_order=True) as h5:
                write_meta(h5, meta, gene_names, sample_names, study_focus)
                focus = h5.create_group("focus", track_order=True)
                for source, names in sources:
                    src = _open_source(source, opened, checked, check)
                    for name in names:
                        if name not in src["focus"]:
                            raise BootgpuError(f"{source}: focus gene {name} is missing")
                        src.copy(src["focus"][name], focus, name=name)
                        if on_copied is not None:
                            on_copied(focus[name])
                        fault_point("assemble")
                if finish is not None:  # e.g. write_focus_table, into the same file before it is renamed
                    finish(h5)
    finally:
        for src in opened.values():
            src.close()


OPEN_SOURCES = 64  # source files assemble_results keeps open (shards are read in turn, gene by gene)


def _open_source(source, opened: dict, checked: set, check) -> h5py.File:
    if source in opened:
        opened[source] = opened.pop(source)  # most recent last
        return opened[source]
    if len(opened) >= OPEN_SOURCES:
        opened.pop(next(iter(opened))).close()
    opened[source] = h5py.File(source, "r")
    if check is not None and source not in checked:
        check(opened[source])
        checked.add(source)
    return opened[source]


def read_hubs_row(grp: h5py.Group) -> dict:
    """The hubs-table row stored with a focus gene (see ``write_focus``), its column names as this
    version calls them (older files: ``LEGACY_NAMES``)."""
    return {modern_name(k): v for k, v in json.loads(grp.attrs["hubs_row"]).items()}


def h5_image(fill) -> bytes:
    """The bytes of an HDF5 file that ``fill(h5)`` writes, made in memory: a file written from them
    with plain writes fails on a full disk with one error, never inside HDF5 (whose partial
    writes and error stacks ended a run on a full disk in a segmentation fault)."""
    import secrets

    with h5py.File(f"bootgpu-image-{secrets.token_hex(8)}", "w", driver="core", backing_store=False) as h5:
        fill(h5)
        h5.flush()
        return h5.id.get_file_image()


def write_part(path: os.PathLike, meta: dict, result: FocusResult, gene_names) -> None:
    """A single focus gene's result (resumable runs keep one per finished gene), made in memory
    and written atomically and durably."""
    def fill(h5):
        m = h5.create_group("meta")
        for key, value in meta.items():
            m.attrs[key] = value
        write_focus(h5.create_group("focus"), result, gene_names)

    atomic_write_bytes(path, h5_image(fill), fault="part")


def read_results(path: os.PathLike) -> tuple[dict, list[FocusResult]]:
    """(meta, results in file order) of a results or part file; ``meta`` holds ``study_focus``
    where the file has it."""
    path = Path(path)
    if not path.exists():
        raise BootgpuError(f"{path}: results file not found")
    with h5py.File(path, "r") as h5:
        meta = dict(h5["meta"].attrs)
        if "study_focus" in h5:
            meta["study_focus"] = h5["study_focus"][()]
        results = [read_focus(h5["focus"][name]) for name in h5["focus"]]
    return meta, results
