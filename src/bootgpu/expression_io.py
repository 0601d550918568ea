"""Reading and writing the expression matrix (genes x samples).

Input is TSV/CSV (optionally gzip-compressed) or HDF5.  Every problem with the
input is reported as one ``BootgpuError`` line that names the file and the
line, gene and sample at fault, so a user can fix the file without a traceback.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from .atomic import atomic_path
from .errors import BootgpuError

GZIP_MAGIC = b"\x1f\x8b"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
DEMO_FILE = "all_leukemia_top2000.tsv.gz"


@dataclass(frozen=True, eq=False)
class Expression:
    """An expression matrix with its gene and sample names.

    ``values`` is coerced to C-contiguous float64 so every backend can rely on
    one memory layout.  ``source`` (the file it came from) only feeds error
    messages.  ``eq=False`` because array fields make value equality ambiguous.
    """

    values: np.ndarray  # (n_genes, n_samples) float64, C-contiguous
    gene_names: tuple[str, ...]
    sample_names: tuple[str, ...]
    source: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        values = np.ascontiguousarray(self.values, dtype=np.float64)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "gene_names", tuple(str(g) for g in self.gene_names))
        object.__setattr__(self, "sample_names", tuple(str(s) for s in self.sample_names))
        shape = (len(self.gene_names), len(self.sample_names))
        if values.shape != shape:
            raise ValueError(f"values shape {values.shape} does not match names {shape}")

    @property
    def n_genes(self) -> int:
        return self.values.shape[0]

    @property
    def n_samples(self) -> int:
        return self.values.shape[1]

    @cached_property
    def _gene_rows(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.gene_names)}

    def gene_rows(self) -> dict[str, int]:
        """Gene id -> row index (a shared mapping: do not modify)."""
        return self._gene_rows

    def transposed(self) -> "Expression":
        """The same data with rows and columns swapped (a samples x genes file read as genes x samples)."""
        return Expression(self.values.T, self.sample_names, self.gene_names, source=self.source)

    def gene_index(self, name: str) -> int:
        """Row of gene ``name``; a BootgpuError (not KeyError) if it is absent."""
        try:
            return self._gene_rows[name]
        except KeyError:
            where = f"{self.source}: " if self.source else ""
            raise BootgpuError(f"{where}unknown gene {name!r} (not among the "
                               f"{self.n_genes} gene ids)") from None


def demo_expression_path() -> Path:
    """Path of the bundled demo matrix (top-2000-variance ALL probes, 2000 x 128)."""
    return Path(str(resources.files("bootgpu").joinpath("data", DEMO_FILE)))


def read_expression(path: str | os.PathLike, samples_in_rows: bool = False, sep: str | None = None,
                    layer: str | None = None) -> Expression:
    """Load a TSV/CSV (plain or gzip) or HDF5 expression matrix, fully validated.

    The file holds genes x samples (first column / ``/gene_names``: gene ids), or samples x genes
    with ``samples_in_rows`` (first column: sample ids, header: gene ids; in HDF5, ``/expr`` of
    shape (samples, genes)); the result is always genes x samples.  Text files: the separator is
    ``sep`` (tab, comma or semicolon; ``SEPARATORS`` names) or detected (``_delimiter``); a header
    one field shorter than the rows (R's ``write.table`` default: no cell above the row names) is
    read as all column ids.  Excel workbooks are refused with what to do instead.  AnnData
    ``.h5ad`` files (cells x genes, as scanpy keeps them) are read through the anndata package:
    cells are the samples, ``var_names`` the gene ids, ``layer`` the layer (default X).
    """
    path = Path(path)
    if path.suffix.lower() == ".h5ad":
        return _read_h5ad(path, layer)
    if layer is not None:
        raise BootgpuError(f"--layer is for AnnData .h5ad input; {path} is not one")
    return _read_expression(path, samples_in_rows, _separator(sep))


def _read_h5ad(path: Path, layer: str | None) -> Expression:
    """An AnnData file's cells x genes matrix (or one of its layers) as genes x cells."""
    try:
        import anndata
    except ImportError:
        raise BootgpuError(f"{path}: reading AnnData .h5ad needs the anndata package: pip install anndata "
                           f"(or pip install 'bootgpu[anndata]')") from None
    if not path.exists():
        raise BootgpuError(f"{path}: file not found")
    try:
        data = anndata.read_h5ad(path, backed=None)
    except Exception as exc:  # anndata raises many kinds on a damaged or foreign file
        raise BootgpuError(f"{path}: not a readable AnnData file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if layer is None:
        matrix = data.X
    elif layer in data.layers:
        matrix = data.layers[layer]
    else:
        raise BootgpuError(f"{path}: no layer {layer!r} (layers: {', '.join(data.layers.keys()) or 'none'}; "
                           f"without --layer, X is read)")
    if matrix is None:
        raise BootgpuError(f"{path}: X is empty; give --layer NAME")
    if hasattr(matrix, "toarray"):  # sparse (CSR/CSC): bootgpu works on dense genes x samples
        matrix = matrix.toarray()
    values = np.asarray(matrix, dtype=np.float64).T
    return _validated(path, values, [str(g) for g in data.var_names], [str(c) for c in data.obs_names],
                      lambda i: f"var {i}", lambda j: f"obs {j}", ("gene", "cell"))


SEPARATORS = {"tab": "\t", "\\t": "\t", "\t": "\t", "comma": ",", ",": ",", "semicolon": ";", ";": ";"}


def _separator(sep: str | None) -> str | None:
    if sep is None:
        return None
    if sep not in SEPARATORS:
        raise BootgpuError(f"--sep must be tab, comma or semicolon, got {sep!r}")
    return SEPARATORS[sep]


# Sample ids of the big public archives: GEO, SRA/ENA/DDBJ runs and experiments, BioSample, TCGA barcodes.
_SAMPLE_ID = re.compile(r"(GSM\d+|[SED]RR\d+|[SED]RX\d+|SAM[NED]A?\d+|TCGA-\w\w-\w{4}.*)", re.IGNORECASE)


# Gene ids of the common annotations: Ensembl (human, mouse ...), RefSeq, Affymetrix probe sets, Entrez-like
# "LOC" ids, and upper-case symbols with digits (ACTB, GAPDH, HLA-DRB1 ... as column ids next to numeric rows).
_GENE_ID = re.compile(r"(ENS[A-Z]*G\d+(\.\d+)?|[NX][MR]_\d+(\.\d+)?|\d+_(s_|x_|g_|f_|i_|r_)?at|AFFX-.+|LOC\d+)",
                      re.IGNORECASE)


def _share(names, pattern: re.Pattern) -> float:
    names = names[:1000]
    return sum(bool(pattern.fullmatch(n)) for n in names) / max(len(names), 1)


def orientation(expr: Expression) -> tuple[bool, str | None]:
    """(clearly transposed?, why) for ``expr`` read as genes x samples.  Clearly samples x genes:
    more columns than rows, and row ids that look like sample ids or column ids that look like
    gene ids -- then a run is refused unless --samples-in-rows or --genes-in-rows says which.  A
    single sign (only more samples than genes, or only sample-like row ids) is a warning.  (False,
    None) when it looks right."""
    rows_like_samples = _share(expr.gene_names, _SAMPLE_ID) > 0.5
    cols_like_genes = _share(expr.sample_names, _GENE_ID) > 0.5
    wide = expr.n_samples > expr.n_genes
    where = f"{expr.source}: " if expr.source else ""
    shape = f"{expr.n_genes:,} rows x {expr.n_samples:,} columns"
    if wide and (rows_like_samples or cols_like_genes):
        sign = (f"row ids look like sample ids ({expr.gene_names[0]!r}, ...)" if rows_like_samples else
                f"column ids look like gene ids ({expr.sample_names[0]!r}, ...)")
        return True, (f"{where}looks like samples x genes ({shape}; its {sign}): rerun with --samples-in-rows if it "
                      f"holds samples in rows, or --genes-in-rows if it is genes x samples")
    if rows_like_samples:
        why = f"its row ids look like sample ids ({expr.gene_names[0]!r}, ...)"
    elif wide:
        why = f"it has more samples ({expr.n_samples}) than genes ({expr.n_genes})"
    else:
        return False, None
    return False, (f"{where}{why}; if the file holds samples in rows and genes in columns, rerun with "
                   f"--samples-in-rows (--genes-in-rows says it does not)")


def orientation_warning(expr: Expression) -> str | None:
    """The warning of ``orientation`` (also for a clear case), or None."""
    return orientation(expr)[1]


ZIP_MAGIC = b"PK\x03\x04"  # .xlsx (and .ods) are zip archives
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls


def _refuse_spreadsheet(path: Path, head: bytes) -> None:
    """Workbooks are told by their content (a file named .xlsx that is not a zip archive is not
    called a spreadsheet: the text reader says what it is not)."""
    kind = None
    if head.startswith(OLE_MAGIC):
        kind = "an Excel .xls workbook"
    elif head.startswith(ZIP_MAGIC):
        kind = "a spreadsheet workbook (.xlsx/.ods, a zip archive)"
    if kind:
        raise BootgpuError(f"{path}: {kind}, not a text table; save the sheet as CSV or tab-separated text "
                           f"(Excel: File > Save As > CSV UTF-8) and pass that file")


def _read_expression(path: Path, samples_in_rows: bool, sep: str | None = None) -> Expression:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise BootgpuError(f"{path}: file not found") from None
    except OSError as exc:
        raise BootgpuError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if head.startswith(HDF5_MAGIC) or path.suffix.lower() in (".h5", ".hdf5"):
        return _read_h5(path, samples_in_rows)
    _refuse_spreadsheet(path, head)
    if samples_in_rows:  # rows are samples, columns genes: the messages say so
        return _read_text(path, head.startswith(GZIP_MAGIC), ("sample", "gene"), sep).transposed()
    return _read_text(path, head.startswith(GZIP_MAGIC), sep=sep)


def write_expression_h5(expr: Expression, path: str | os.PathLike) -> None:
    """Write the original pipeline's HDF5 layout, atomically.

    ``/expr`` is float32 genes x samples (half the size; microarray data has
    no meaningful digits beyond float32), ``/gene_names`` and ``/sample_names``
    are variable-length UTF-8 strings.
    """
    values = expr.values.astype(np.float32)
    if not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise BootgpuError(f"{path}: gene {expr.gene_names[i]!r}, sample "
                           f"{expr.sample_names[j]!r}: {expr.values[i, j]!r} "
                           f"does not fit in float32")
    strings = h5py.string_dtype(encoding="utf-8")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("expr", data=values)
            f.create_dataset("gene_names", data=list(expr.gene_names), dtype=strings)
            f.create_dataset("sample_names", data=list(expr.sample_names), dtype=strings)


# --- text ------------------------------------------------------------------

_DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon"}


def _delimiter(path: Path, lines: list[str]) -> str:
    """The separator that splits the header and the first row into the same number (>= 2) of
    fields (or one more in the row: R's write.table leaves the cell above the row names out);
    among those, the one the extension suggests (.tsv/.txt tab, .csv comma), else tab, comma,
    semicolon in that order.  When none fits, the extension's or the header's, so the row that
    does not fit gets its own error."""
    name = path.name.lower().removesuffix(".gz")
    preferred = "\t" if name.endswith((".tsv", ".txt")) else "," if name.endswith(".csv") else None
    header, first = lines[0], lines[1]
    fits = [d for d in _DELIMITER_NAMES if header.count(d) >= 1 and first.count(d) in (header.count(d), header.count(d) + 1)]
    if preferred in fits:
        return preferred
    if fits:
        return fits[0]
    if preferred:
        return preferred
    for delim in _DELIMITER_NAMES:
        if delim in header:
            return delim
    raise BootgpuError(f"{path}: line 1: cannot tell the separator (no tab, comma or semicolon in the header); "
                       f"write tab- or comma-separated text with gene ids in the first column and sample ids in "
                       f"the header, or give --sep")


def _name(cell: str) -> str:
    """Strip whitespace and one pair of double quotes (as R's write.csv adds)."""
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        cell = cell[1:-1]
    return cell


def _read_text(path: Path, gzipped: bool, kinds=("gene", "sample"), sep: str | None = None) -> Expression:
    """Rows are ``kinds[0]``s (ids in the first column), columns ``kinds[1]``s (ids in the header)."""
    row_kind, col_kind = kinds
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BootgpuError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        if gzipped:
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError, zlib.error) as exc:
        raise BootgpuError(f"{path}: corrupt gzip data ({exc})") from None
    except UnicodeDecodeError as exc:
        named = (f"; its name says {path.suffix}, but it is not a workbook either"
                 if path.suffix.lower() in (".xls", ".xlsx", ".xlsm", ".ods") else "")
        raise BootgpuError(f"{path}: not a text table: byte {exc.start} of the {'decompressed ' if gzipped else ''}data "
                           f"is not UTF-8 text{named}") from None
    del raw

    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise BootgpuError(f"{path}: file is empty")
    body = lines[1:]
    if not body:
        raise BootgpuError(f"{path}: header only, no data rows")
    delim = sep or _delimiter(path, lines)
    if '"' in text:  # quoted fields ("a,b" is one id; R's write.csv quotes every cell): the csv module
        return _read_quoted(path, lines, delim, kinds)
    header = [_name(c) for c in lines[0].split(delim)]
    if len(header) == 1:
        raise BootgpuError(f"{path}: line 1: no {_DELIMITER_NAMES[delim]} in the header, so no {col_kind} columns; "
                           f"is the file separated by another character? (--sep tab|comma|semicolon)")
    if body[0].count(delim) == len(header) and all(line.count(delim) == len(header) for line in body[:5]):
        header = ["", *header]  # R's write.table: no cell above the row names
    samples = header[1:]
    for col, s in enumerate(samples, start=2):
        if not s:
            raise BootgpuError(f"{path}: line 1, column {col}: empty {col_kind} id")
    _check_names(path, genes=[], samples=samples, row=None, col=_text_col, kinds=kinds)

    n_delims = len(header) - 1
    genes = []
    for lineno, line in enumerate(body, start=2):
        gene = _name(line.partition(delim)[0])
        if line.count(delim) != n_delims:
            raise BootgpuError(f"{path}: line {lineno} ({row_kind} {gene!r}): "
                               f"{line.count(delim) + 1} fields, expected {n_delims + 1} "
                               f"like the header")
        if not gene:
            raise BootgpuError(f"{path}: line {lineno}: empty {row_kind} id")
        genes.append(gene)

    if delim != "," and _decimal_commas(body[:5], delim):  # 7,597323 for 7.597323 (German, French ... locales)
        body = [gene + delim + rest.replace(",", ".") for gene, _, rest in (line.partition(delim) for line in body)]
    try:
        values = np.loadtxt(body, delimiter=delim, usecols=range(1, n_delims + 1),
                            dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        _raise_bad_cell(path, body, delim, genes, samples, kinds)
        raise  # pragma: no cover - _raise_bad_cell always raises
    return _validated(path, values, genes, samples, _text_row, _text_col, kinds)


def _read_quoted(path: Path, lines: list[str], delim: str, kinds) -> Expression:
    """The same table as ``_read_text`` reads, with fields parsed by the csv module, so a quoted
    field may hold the separator (an id "a,b") and quoted numbers are numbers."""
    import csv

    row_kind, col_kind = kinds
    rows = list(csv.reader(lines, delimiter=delim))
    header = [c.strip() for c in rows[0]]
    if len(header) == 1:
        raise BootgpuError(f"{path}: line 1: no {_DELIMITER_NAMES[delim]} in the header, so no {col_kind} columns; "
                           f"is the file separated by another character? (--sep tab|comma|semicolon)")
    body = rows[1:]
    if all(len(r) == len(header) + 1 for r in body[:5]):
        header = ["", *header]  # R's write.table: no cell above the row names
    samples = header[1:]
    for col, s in enumerate(samples, start=2):
        if not s:
            raise BootgpuError(f"{path}: line 1, column {col}: empty {col_kind} id")
    _check_names(path, genes=[], samples=samples, row=None, col=_text_col, kinds=kinds)
    genes = []
    for lineno, row in enumerate(body, start=2):
        gene = row[0].strip() if row else ""
        if len(row) != len(header):
            raise BootgpuError(f"{path}: line {lineno} ({row_kind} {gene!r}): {len(row)} fields, expected "
                               f"{len(header)} like the header")
        if not gene:
            raise BootgpuError(f"{path}: line {lineno}: empty {row_kind} id")
        genes.append(gene)
    values = np.empty((len(body), len(samples)), dtype=np.float64)
    for i, row in enumerate(body):
        for j, cell in enumerate(row[1:]):
            try:
                values[i, j] = float(cell)
                if "_" in cell:  # Python accepts 1_000; a table does not mean it
                    raise ValueError
            except ValueError:
                raise BootgpuError(f"{path}: line {i + 2}, {row_kind} {genes[i]!r}, {col_kind} {samples[j]!r}: "
                                   f"{cell!r} is not a number") from None
    return _validated(path, values, genes, samples, _text_row, _text_col, kinds)


_DECIMAL_COMMA = re.compile(r"[-+]?\d+(,\d+)?([eE][-+]?\d+)?|[-+]?(nan|inf)", re.IGNORECASE)


def _decimal_commas(lines: list[str], delim: str) -> bool:
    """Whether the value cells of ``lines`` write decimal commas (every cell a number with at most
    one comma as its decimal mark, and some with one): such a file is read with the commas as
    points.  Never with comma-separated fields, where a comma cannot be both."""
    cells = [cell.strip() for line in lines for cell in line.split(delim)[1:]]
    return any("," in c for c in cells) and all(_DECIMAL_COMMA.fullmatch(c) for c in cells)


def _text_row(i: int) -> str:
    return f"line {i + 2}"


def _text_col(j: int) -> str:
    return f"column {j + 2}"


def _raise_bad_cell(path, body, delim, genes, samples, kinds=("gene", "sample")):
    """Slow path, run only after the fast parse failed: find and name the bad cell."""
    for i, line in enumerate(body):
        for j, cell in enumerate(line.split(delim)[1:]):
            try:
                float(cell)
                ok = "_" not in cell  # Python accepts 1_000; numpy does not
            except ValueError:
                ok = False
            if not ok:
                hint = ""
                if re.fullmatch(r"\s*[-+]?\d+,\d+\s*", cell):
                    hint = ("; it looks like a decimal comma: write decimal points (decimal commas are read where the "
                            "fields are separated by tabs or semicolons and every value of the first rows writes one)")
                raise BootgpuError(f"{path}: line {i + 2}, {kinds[0]} {genes[i]!r}, {kinds[1]} "
                                   f"{samples[j]!r}: {cell!r} is not a number{hint}")
    raise BootgpuError(f"{path}: a value cell is not a number")


# --- HDF5 ------------------------------------------------------------------

def _read_h5(path: Path, samples_in_rows: bool = False) -> Expression:
    """genes x samples from /expr, which is (samples, genes) with ``samples_in_rows``."""
    try:
        with h5py.File(path, "r") as f:
            parts = {}
            for key in ("expr", "gene_names", "sample_names"):
                if key not in f or not isinstance(f[key], h5py.Dataset):
                    raise BootgpuError(f"{path}: HDF5 dataset {'/' + key!r} is missing "
                                       f"(need /expr, /gene_names, /sample_names)")
                parts[key] = f[key][()]
    except OSError as exc:
        raise BootgpuError(f"{path}: not a readable HDF5 file ({exc})") from None

    genes = [_decode(path, "gene_names", g) for g in np.atleast_1d(parts["gene_names"])]
    samples = [_decode(path, "sample_names", s) for s in np.atleast_1d(parts["sample_names"])]
    values = np.asarray(parts["expr"])
    expected, layout = (len(genes), len(samples)), "genes x samples"
    if samples_in_rows:
        expected, layout = expected[::-1], "samples x genes, as --samples-in-rows says"
    if values.ndim != 2 or values.shape != expected:
        raise BootgpuError(f"{path}: dataset '/expr' has shape {values.shape}, expected "
                           f"{expected} from /gene_names and /sample_names ({layout})")
    if samples_in_rows:
        values = values.T
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise BootgpuError(f"{path}: dataset '/expr' has non-numeric dtype {values.dtype}")
    for kind, names in (("gene", genes), ("sample", samples)):
        for i, n in enumerate(names):
            if not n:
                raise BootgpuError(f"{path}: dataset '/{kind}_names' row {i}: empty {kind} id")
    if samples_in_rows:
        row, col = (lambda i: f"'/expr' column {i}"), (lambda j: f"'/expr' row {j}")
    else:
        row, col = (lambda i: f"'/expr' row {i}"), (lambda j: f"'/expr' column {j}")
    return _validated(path, values.astype(np.float64), genes, samples, row, col)


def _decode(path: Path, key: str, item) -> str:
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            raise BootgpuError(f"{path}: dataset '/{key}' holds non-UTF-8 bytes "
                               f"{item!r}") from None
    return str(item)


# --- shared checks -----------------------------------------------------------

def _first_duplicate(names: list[str]) -> tuple[str, int, int] | None:
    """(name, first index, repeated index) of the first name seen twice, else None."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            return name, first[name], i
        first[name] = i
    return None


def _check_names(path: Path, genes: list[str], samples: list[str],
                 row: Callable[[int], str] | None, col: Callable[[int], str], kinds=("gene", "sample")) -> None:
    """Column (sample) ids must be unique and at least 2; row (gene) ids must be unique."""
    dup = _first_duplicate(samples)
    if dup:
        raise BootgpuError(f"{path}: duplicate {kinds[1]} id {dup[0]!r} in {col(dup[1])} "
                           f"and {col(dup[2])}")
    if len(samples) < 2:
        raise BootgpuError(f"{path}: {len(samples)} sample column(s) {samples}; "
                           f"need at least 2 samples")
    dup = _first_duplicate(genes)
    if dup:
        raise BootgpuError(f"{path}: duplicate {kinds[0]} id {dup[0]!r} at {row(dup[1])} "
                           f"and {row(dup[2])}")


def _validated(path: Path, values: np.ndarray, genes: list[str], samples: list[str],
               row: Callable[[int], str], col: Callable[[int], str], kinds=("gene", "sample")) -> Expression:
    """Checks common to all formats; ``row(i)``/``col(j)`` name places for messages."""
    _check_names(path, genes, samples, row, col, kinds)
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise BootgpuError(f"{path}: {row(i)}, {kinds[0]} {genes[i]!r}, {kinds[1]} {samples[j]!r}: "
                           f"value is {values[i, j]} (NaN and infinite values are not allowed)")
    return Expression(values, tuple(genes), tuple(samples), source=str(path))
