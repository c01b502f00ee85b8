"""`sftkd docs`: the offline site. Every notebook of nbs/ and tutorials/ has its page, every public name its
entry, every link resolves inside the site, plotly figures draw from the site's own plotly.min.js.

Executing every notebook takes minutes (each library notebook's tests, each tutorial's training), so this test
executes a representative two — the figures notebook and the stepper tutorial (02) with the tiny
parameters of tests/test_tutorials.py — and renders the others as stored. (Not the quickstart: the suite runs it
once, in conftest's `quickstart_run`.) SFTKD_DOCS_FULL=1 executes all of them
(tiny parameters for every tutorial)."""
import html
import json
import os
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest
from test_tutorials import TINY  # the one place the tiny tutorial parameters live

from sftkd_edu.docs import check_docs, doc_pages, signature_text

ROOT = Path(__file__).resolve().parents[1]
FULL = os.environ.get("SFTKD_DOCS_FULL") == "1"
EXECUTE = ["06_viz", "02_inside_sftn"]   # the home page's only code cell is hidden: running it shows nothing


def text_of(page):
    "What a reader sees: the page without tags and entities."
    return html.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "site"
    params = out.parent / "tiny.json"
    params.write_text(json.dumps({k: v for k, v in TINY.items() if (ROOT / "tutorials" / f"{k}.ipynb").exists()}))
    exe = Path(sys.executable).parent / "sftkd"
    args = [] if FULL else [a for n in EXECUTE for a in ("--execute", n)]
    r = subprocess.run([str(exe), "docs", str(out), "--root", str(ROOT), "--params-file", str(params), *args],
                       capture_output=True, text=True, cwd=out.parent, timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]   # includes check_docs: no broken page
    return out


def test_every_notebook_has_a_page_in_the_index(site):
    nbs = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_") and p.stem != "index")
    exports = lambda n: any(c["cell_type"] == "code" and "#| default_exp" in "".join(c["source"])
                            for c in json.loads((ROOT / "nbs" / f"{n}.ipynb").read_text())["cells"])
    guides = {n for n in nbs if not exports(n)}   # no module: prose and measured results
    assert guides == {"12_results", "13_speed", "14_guide", "15_glossary"}, guides
    tuts = sorted(p.stem for p in (ROOT / "tutorials").glob("[0-9]*.ipynb"))
    expected = ({"index.html"} | {f"api/{n}.html" for n in nbs
                                  if n not in guides} | {f"guides/{n}.html" for n in guides}
                | {f"tutorials/{n}.html" for n in tuts})
    assert {str(p.relative_to(site)) for p in site.rglob("*.html")} == expected
    nav = re.search(r'<nav class="sftkd-nav">(.*?)</nav>', (site / "index.html").read_text(), re.S).group(1)
    assert set(re.findall(r'href="([^"]+)"', nav)) == expected
    for page in expected:   # the same navigation on every page, its links relative to that page
        assert '<nav class="sftkd-nav">' in (site / page).read_text()


def test_links_resolve_and_nothing_needs_the_network(site):
    assert check_docs(site) == []
    for p in site.rglob("*.html"):
        assert not re.search(r'<script[^>]+src="https?://', p.read_text()), p


def test_home_page_is_the_readme(site):
    page = (site / "index.html").read_text()
    home = text_of(page)
    for line in ("Knowledge distillation with student-friendly teachers", "Does SFTN help?", "+0.61 ± 0.86 (4/5)"):
        assert line in home, line
    for guide in ("12_results", "13_speed",
                  "14_guide"):   # the README's links to the docs pages, pointed at their pages
        assert f'href="guides/{guide}.html"' in page, guide
    assert 'href="tutorials/01_quickstart.html"' in page and (site / "CONTRIBUTING.md").is_file()
    assert (site / "docs" / "stepper_losses.png").read_bytes() == (ROOT / "docs" / "stepper_losses.png").read_bytes()


def test_guide_pages_hold_what_left_the_readme(site):
    "The README is the front door (issue 18: at most 8 KB); its former sections live on these pages."
    sections = {"12_results": ["Measured: the quickstart on a 2-core CPU",
                               "Measured: SFTN where it was designed to work",
                               "Measured: short schedules, where SFTN collapses",
                               "Measured: SFTN when the student is unknown",
                               "Measured: ten KD methods, one seed", "Measured: the digits100-quick preset"],
                "13_speed": ["The same numbers on every machine", "Speed: sftkd bench and the training loop's options",
                             "Measured on a 2-core CPU with native bf16",
                             "Measured on a 2-core CPU without native bf16", "Accuracy parity"],
                "14_guide": ["Watching an SFTN teacher", "The zoo and the data", "KD methods", "Experiment grids",
                             "Checkpoints, resume and multi-GPU", "Map of the notebooks",
                             "Building the docs and the wheel"]}
    for guide, heads in sections.items():
        text = text_of((site / "guides" / f"{guide}.html").read_text())
        for head in heads:
            assert head in text, (guide, head)
    for png in ("bench_gains.png", "bench_length.png"):   # the results page's figures, copied into the site
        assert (site / "docs" / png).read_bytes() == (ROOT / "docs" / png).read_bytes(), png


def test_every_public_name_has_its_entry(site):
    for page in doc_pages(ROOT):
        if page["kind"] != "api" or page["module"] is None: continue
        mod = import_module(page["module"])
        text = text_of((site / page["out"]).read_text())
        for name in mod.__all__:
            obj = getattr(mod, name)
            entry = f"{name} = " if not callable(obj) else signature_text(obj, name)
            assert entry in text, f"{page['out']}: no entry for {name} ({entry!r})"
    cli = text_of((site / "api" / "09_cli.html").read_text())
    assert "Copy every tutorial notebook into dest; return the paths written." in cli
    assert re.search(r"dest\s+folder to copy the notebooks into", cli)   # the docments table


def test_executed_pages_have_outputs_and_offline_figures(site):
    js = site / "plotly.min.js"
    assert js.stat().st_size > 1_000_000
    for page in ("api/06_viz.html", "tutorials/02_inside_sftn.html"):
        body = (site / page).read_text()
        assert body.count('<script src="../plotly.min.js"') == 1 and "Plotly.newPlot" in body, page
    tut = text_of((site / "tutorials" / "02_inside_sftn.html").read_text())
    # papermill's injected tiny parameters (the figures above: the run's outputs)
    assert "# Parameters\nn_train = 200" in tut
    if not FULL:   # a page rendered as stored has its code but no outputs
        assert "Plotly.newPlot" not in (site / "tutorials" / "03_kd_methods.html").read_text()


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists() or os.environ.get("SFTKD_NO_BROWSER") == "1",
                    reason="needs Debian's chromium (.ci/run installs it)")
def test_figures_draw_in_a_browser_without_network(site):
    """Chromium opens an executed tutorial's page from disk, runs its scripts, and plotly draws the figures (svg
    elements)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update",
             "--disable-sync", "--no-first-run", "--virtual-time-budget=10000", "--dump-dom"]
    page = site / "tutorials" / "02_inside_sftn.html"
    r = subprocess.run(["/usr/bin/chromium", *flags, page.as_uri()], capture_output=True, text=True, timeout=120)
    figures = (page.read_text()).count('class="plotly-graph-div"')
    assert figures >= 2 and r.stdout.count('class="main-svg"') >= figures, r.stderr[-2000:]


def test_readme_table_is_what_the_committed_records_give():
    """The README's paired table (gain, interval, p, Holm, seeds needed, verdict) is recomputed from
    studies/digits100-bench: no number typed by hand."""
    from sftkd_edu.reports import _bench_groups, _paired
    from sftkd_edu.stats import with_stats
    from sftkd_edu.viz import mean_std
    g = _bench_groups(ROOT / "studies" / "digits100-bench")
    rows, diffs = [], []
    for m, rc in (("kd", "sftn"), ("kd", "sftn_detach"), ("kd", "sftn_stop_kl_grad"), ("dkd", "sftn"),
                  ("fitnet", "sftn")):
        d = _paired(g[(f"30 epochs · {m}", rc)], g[(f"30 epochs · {m}", "standard")]); mu, sd = mean_std(d)
        rows.append([m, rc, f"{mu:+.2f} ± {sd:.2f} ({sum(x > 0 for x in d)}/{len(d)})"]); diffs.append(d)
    stats = with_stats([{} for _ in rows], diffs)   # Holm over the five comparisons the table shows
    want = ["| " + " | ".join(r + [s[k] for k in ("95 % CI", "p (Holm)", "seeds for 80 % power", "verdict")]) + " |"
            for r, s in zip(rows, stats)]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [w for w in want if w not in readme]
    assert not missing, missing


def test_shipped_studies_hold_every_committed_record():
    """Each pack in sftkd_edu/assets/studies is its committed grid's finished records, run for run and field for field:
    when records land, `python scripts/pack_studies.py`."""
    import gzip
    packs = sorted((ROOT / "sftkd_edu" / "assets" / "studies").glob("*.json.gz"))
    assert [p.name for p in packs] == [f"{n}.json.gz"
                                       for n in ("digits100-bench", "digits100-gap", "sftn-laptop-study")], packs
    for pack in packs:
        name = pack.name.removesuffix(".json.gz")
        runs = json.loads(gzip.decompress(pack.read_bytes()))["runs"]
        recs = {d.name: json.loads((d / "record.json").read_text())
                for d in (ROOT / "studies" / name / "runs").iterdir()
                if (d / "record.json").is_file()}
        committed = {rid: r for rid, r in recs.items() if r.get("status") == "ok"}
        assert sorted(runs) == sorted(committed), (name, sorted(set(runs) ^ set(committed))[:5])
        different = [rid for rid in runs
                     if json.dumps(runs[rid], sort_keys=True) != json.dumps(committed[rid], sort_keys=True)]
        assert not different, (name, different[:5])
