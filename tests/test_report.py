"""`bootgpu report`: the HTML of a small study is well formed, embeds every figure it names (the
same bytes as the files beside it) and lists every focus gene in its hubs table; the report of the
demo study, opened in headless Chromium, loads every image without console errors, sorts its table
when a header is clicked, and leaves a full-page screenshot ($BOOTGPU_ARTEFACTS, else tmp)."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import bootgpu
from bootgpu.cli import main
from bootgpu.report import CLASS_COLOURS, ego_centre, gene_edges, study_table
from browser import artefacts, severe_console_messages, start_chromium

PNG = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "input", "link", "col", "wbr", "source", "area", "base", "embed", "track"}
PER_GENE = ("scatter", "forest", "classes", "networks", "degrees")


class Page(HTMLParser):
    """The parts of a report page the tests read, and a check that every element is closed in order."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.images, self.headers, self.rows, self.ids = [], [], [], [], [], set()
        self._in_hubs, self._part, self._row, self._cell = False, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs)
        if tag == "table" and attrs.get("id") == "hubs":
            self._in_hubs = True
        if self._in_hubs and tag in ("thead", "tbody"):
            self._part = tag
        if self._in_hubs and tag == "tr":
            self._row = []
        if self._in_hubs and tag in ("td", "th"):
            self._cell = ""
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}> at {self.getpos()}")
            return
        self.stack.pop()
        if self._in_hubs and tag in ("td", "th"):
            self._row.append(self._cell)
            self._cell = None
        if self._in_hubs and tag == "tr":
            (self.headers if self._part == "thead" else self.rows).append(self._row)
        if tag == "table" and self._in_hubs:
            self._in_hubs = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert not page.errors and page.stack == [], (page.errors[:5], page.stack)
    return page


@pytest.fixture(scope="module")
def small_report(small_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report"
    assert main(["report", str(small_study), "--out", str(out)]) == 0
    return out


def test_report_is_one_well_formed_page_with_every_figure_embedded(small_study, small_report, capsys):
    index = small_report / "index.html"
    page = parse(index)
    files = {p.name for p in (small_report / "figures").glob("*.png")}
    assert page.images, "no figure"
    named = set()
    for img in page.images:
        assert img["src"].startswith("data:image/png;base64,") and img.get("alt")
        data = base64.b64decode(img["src"].split(",", 1)[1])
        assert data.startswith(PNG)
        path = small_report / img["data-file"]
        assert path.read_bytes() == data, path  # the same figure beside the page
        named.add(path.name)
    assert named == files  # every file written is on the page, and every figure on the page is a file
    text = index.read_text()
    assert "http://" not in text and "https://" not in text  # opens offline: nothing fetched
    assert text.count("<figcaption>") == len(page.images)
    with bootgpu.open_results(small_study) as res:
        meta = res.meta
        for key in ("study_id",):
            assert str(meta[key]) in text
        assert "B = 40 replicates" in text and "150 genes x 128 samples" in text
        assert f"bootgpu {meta['bootgpu_version']}" in text
        table = study_table(res)
        focus_ids = [res.gene_names[r] for r in res.focus_index]
        for gene in focus_ids:  # every focus gene has a section (3 < --top 20) with its figures or a reason
            section = text[text.index(f'id="gene-{gene}"'):]
            section = section[: section.find("<section>") if "<section>" in section else len(section)]
            for kind in PER_GENE:
                assert f"-{gene}-{kind}.png" in section or "Not drawn" in section, (gene, kind)
    header = page.headers[0]
    assert header[:2] == ["rank", "gene_id"] and "n_rewire" in header and "L2L1_rewire" in header
    assert len(page.rows) == len(focus_ids) == 3  # one row per focus gene
    assert sorted(row[1] for row in page.rows) == sorted(focus_ids)
    assert [int(row[0]) for row in page.rows] == [1, 2, 3]
    hubs = (small_study / "rewiring_hubs.tsv").read_text().splitlines()[1:]
    assert [row[1] for row in page.rows] == [line.split("\t")[2] for line in hubs]  # the hubs table's order
    got = {row[1]: row[header.index("n_rewire")] for row in page.rows}
    assert got == {g: str(int(n)) for g, n in zip(table["gene_id"], table["n_rewire"])}


def test_report_prints_its_path_and_defaults_to_dir_report(small_study, tmp_path, capsys):
    import shutil

    study = tmp_path / "study"
    shutil.copytree(small_study, study)
    assert main(["report", str(study), "--top", "1"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(study / "report" / "index.html")
    page = parse(study / "report" / "index.html")
    assert len(page.rows) == 3  # the table lists every focus gene, figures only for the top one
    per_gene = {re.sub(r"^gene-\d+-", "", Path(i["data-file"]).stem) for i in page.images if "gene-" in i["data-file"]}
    assert len({name.rsplit("-", 1)[0] for name in per_gene}) == 1
    assert not list(study.glob("report/.*tmp*")) and not list(study.glob("report/figures/.*tmp*"))  # atomic writes


def test_study_table_from_tsvs_equals_focus_genes(small_study):
    """The report reads the study's TSVs (seconds at 20,000 focus genes) instead of every focus
    group; both give the same numbers."""
    with bootgpu.open_results(small_study) as res:
        fast = study_table(res).set_index("gene_idx")
        slow = res.focus_genes.set_index("gene_idx")
        for col in ("n_kept", "n_rewire", "n_disappear", "L1_rewire", "L1_n_new", "mean_abs_delta", "L2L1_rewire"):
            assert np.allclose(fast.loc[slow.index, col].astype(float), slow[col].astype(float), rtol=1e-5, equal_nan=True), col
        assert list(fast.loc[slow.index, "gene_id"]) == list(slow["gene_id"])


def test_ego_networks_centre_on_the_focus_gene_only_when_it_has_partners(small_study):
    with bootgpu.open_results(small_study) as res:
        for row in res.focus_index:
            gene = res.gene_names[row]
            ge = gene_edges(res, row)
            diff = res.network(row, "diff")
            assert np.array_equal(ge.degrees("diff"), np.diff(diff.indptr))
            assert np.array_equal(ge.degrees("low"), np.diff(res.network(row, "low").indptr))
            centre, words = ego_centre(gene, row, ge, res.gene_names)
            if diff.indptr[row + 1] > diff.indptr[row]:
                assert centre == row and "around the focus gene" in words
            elif diff.nnz:
                score = ge.rewiring_score()
                assert score[centre] == score.max() and "most rewired gene" in words and res.gene_names[centre] in words


def test_report_errors_are_one_line(small_study, tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no results file" in err
    assert main(["report", str(small_study), "--top", "-1"]) == 2
    assert "--top" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["report", str(small_study), "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_one_colour_per_class_okabe_ito():
    assert len(set(CLASS_COLOURS.values())) == len(CLASS_COLOURS) == 6


# -- in a browser -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "study"
    assert main(["run", "--demo", "--out", str(out), "--n-bootstrap", "100", "--backend", "numpy"]) == 0
    assert main(["report", str(out)]) == 0
    return out / "report" / "index.html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    drv = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield drv
    drv.quit()


def _column(browser, name: str) -> list[str]:
    return browser.execute_script(
        "var t = document.getElementById('hubs'); var c = Array.prototype.map.call(t.tHead.rows[0].cells, "
        "function (h) { return h.textContent; }).indexOf(arguments[0]);"
        "return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[c].textContent; });", name)


def test_demo_report_in_chromium(browser, demo_report, tmp_path):
    import base64 as b64

    from selenium.webdriver.common.by import By

    browser.get(demo_report.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    images = browser.execute_script(
        "return Array.prototype.map.call(document.images, function (i) { return [i.complete, i.naturalWidth, i.alt]; });")
    assert len(images) >= 3 + 10 * 4, len(images)  # study figures + at least four per gene for the 10 demo genes
    broken = [alt for complete, width, alt in images if not complete or width == 0]
    assert not broken, broken
    assert severe_console_messages(browser) == []
    rows = browser.find_elements(By.CSS_SELECTOR, "#hubs tbody tr")
    assert len(rows) == 10
    header = {h.text.strip(): h for h in browser.find_elements(By.CSS_SELECTOR, "#hubs thead th")}
    header["n_kept"].click()  # numbers: largest first
    kept = [int(v) for v in _column(browser, "n_kept")]
    assert kept == sorted(kept, reverse=True)
    assert header["n_kept"].get_attribute("aria-sort") == "descending"
    header["n_kept"].click()  # again: reversed
    assert [int(v) for v in _column(browser, "n_kept")] == sorted(kept)
    header["gene_id"].click()  # text: A to Z
    ids = _column(browser, "gene_id")
    assert ids == sorted(ids, key=str.lower) and header["n_kept"].get_attribute("aria-sort") is None
    header["rank"].click()
    header["rank"].click()
    assert [int(v) for v in _column(browser, "rank")] == list(range(1, 11))
    assert severe_console_messages(browser) == []
    out = artefacts(tmp_path)
    size = browser.execute_script("return [document.documentElement.scrollWidth, document.documentElement.scrollHeight];")
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                               "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}})
    (out / "report-demo.png").write_bytes(b64.b64decode(shot["data"]))
    assert (out / "report-demo.png").read_bytes().startswith(PNG)
    print(f"screenshot: {out / 'report-demo.png'}")


def test_report_shows_each_top_gene_against_the_permutation_null(tmp_path, write_demo_tsv):
    """With null.h5 and gene_significance.tsv beside the results, each top gene gets the null
    histograms of its metrics; the p-values in the titles come from gene_significance.tsv, and the
    plotted null values are null.h5's rows of that gene."""
    from bootgpu.null import read_null
    from bootgpu.report import NULL_FIGURE_METRICS, null_inputs
    from bootgpu.significance import read_significance

    expr = write_demo_tsv(tmp_path / "expr.tsv", 80)
    study = tmp_path / "study"
    assert main(["run", "--expr", str(expr), "--out", str(study), "--focus", "#3,#7", "--n-bootstrap", "20",
                 "--fdr-alpha", "0.2", "--backend", "numpy", "--permutations", "4"]) == 0
    out = tmp_path / "report"
    assert main(["report", str(study), "--out", str(out), "--jobs", "1"]) == 0
    text = (out / "index.html").read_text()
    assert "against the permutation null (4 random LOW / HIGH splits" in text and "no permutation null" not in text
    assert len(list((out / "figures").glob("gene-*-null.png"))) == 2
    with bootgpu.open_results(study) as res:
        got, _ = null_inputs(res, [3, 7])
    table, null = read_significance(study / "gene_significance.tsv"), read_null(study / "null.h5", [3, 7])
    for i, row in enumerate((3, 7)):
        assert list(got[row]) == list(NULL_FIGURE_METRICS)
        values, observed, p = got[row]["L1_rewire"]
        np.testing.assert_array_equal(values, null.genes["L1_rewire"][i])
        assert (observed, p) == (table[row]["L1_rewire"], table[row]["L1_rewire_p"])


def test_report_without_a_null_says_how_to_get_one(small_report):
    assert "no permutation null: run `bootgpu null`" in (small_report / "index.html").read_text()


def test_count_axes_fit_their_labels_and_one_value_is_one_plain_tick():
    """A y label is never clipped however large the counts (700,000 edges); a study where one focus
    gene has edges draws one bar with one plain tick, not 499.6 ... 500.4."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from bootgpu.report import draw_edges_per_gene, fit_count_axis

    fig = Figure(figsize=(5.6, 3.0), dpi=100)
    fig.subplots_adjust(left=0.75 / 5.6)
    ax = fig.add_subplot()
    ax.bar(range(6), [712_345, 3, 0, 5, 100_000, 9])
    ax.set_ylabel("edges (gene pairs)")
    ax.set_ylim(0, 712_345 * 1.15)
    fit_count_axis(ax)
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.get_yticklabels() if t.get_text()]
    assert any(len(t.get_text()) == 7 and t.get_text()[-4] == "," for t in labels)  # e.g. 600,000
    for text in [*labels, ax.yaxis.label]:
        assert text.get_window_extent(renderer).x0 >= 0, text.get_text()
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    draw_edges_per_gene(ax, np.array([0, 0, 500, 0]))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["500"]
