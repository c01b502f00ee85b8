"""The package as users install it: a wheel built from this checkout, installed into a fresh virtual environment
in a temporary folder, runs `sftkd` from a folder that is not the checkout.

To stay fast the fresh environment borrows the already-installed dependencies (torch is 5 GB): a `.pth` file
appends this interpreter's site-packages to its path, and the wheel is installed with `--no-deps`; that its
declared requirements are then satisfied is checked from inside the new environment. The wheel's own
`sftkd_edu` (in the new site-packages, which comes first) is the one imported — asserted, not assumed."""
import email
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import sftkd_edu

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9]*.ipynb"))


def run(cmd, cwd, env=None, timeout=600):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist and wheel, as `python -m build` makes them (the wheel is built from the sdist). --no-isolation: the
    dev extra installs the build backend, so no index is needed here."""
    out = tmp_path_factory.mktemp("dist")
    r = run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT], cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (whl,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
    return whl, sdist


def test_wheel_and_sdist_contents(dist):
    whl, sdist = dist
    v = sftkd_edu.__version__
    assert whl.name == f"sftkd_edu-{v}-py3-none-any.whl" and sdist.name == f"sftkd_edu-{v}.tar.gz"
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        meta = email.message_from_string(z.read(f"sftkd_edu-{v}.dist-info/METADATA").decode("utf-8"))
        for t in TUTORIALS:   # the tutorials ship, byte for byte as edited in tutorials/
            assert z.read(f"sftkd_edu/tutorials/{t.name}") == t.read_bytes()
        entry_points = z.read(f"sftkd_edu-{v}.dist-info/entry_points.txt").decode()
    assert {"sftkd_edu/__init__.py", "sftkd_edu/cli.py", "sftkd_edu/docs.py", "sftkd_edu/distill/functional.py",
            f"sftkd_edu-{v}.dist-info/licenses/LICENSE"} <= names
    assert {f"sftkd_edu/assets/studies/{n}.json.gz"
            for n in ("digits100-bench", "sftn-laptop-study")} <= names   # tutorial 06's learner mode
    assert not any(n.startswith(("tests/", "nbs/", "tutorials/")) for n in names)
    assert "sftkd = sftkd_edu.cli:_console" in entry_points
    assert (meta["Name"], meta["Version"], meta["Requires-Python"]) == ("sftkd_edu", v, ">=3.10")
    assert meta["License-Expression"] == "Apache-2.0" and meta["License-File"] == "LICENSE"
    assert meta["Summary"].startswith("Knowledge distillation with student-friendly teachers")
    classifiers = meta.get_all("Classifier")
    assert {f"Programming Language :: Python :: 3.{m}" for m in (10, 11, 12, 13)} <= set(classifiers)
    assert "Operating System :: OS Independent" in classifiers
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) >= {"Homepage", "Source", "Docs"} and all(u.startswith("https://github.com/sftkd-edu/sftkd_edu")
                                                               for u in urls.values())
    reqs = meta.get_all("Requires-Dist")
    assert any(r.startswith("torch") for r in reqs) and any(r.startswith("nbconvert") for r in reqs)
    assert meta.get_all("Provides-Extra") == ["static", "cluster",
                                              "dev"] and any(r.startswith("build") and 'extra == "dev"' in r
                                                             for r in reqs)
    assert any(r.startswith("kaleido") and 'extra == "static"' in r
               for r in reqs)   # static images: pip install "sftkd_edu[static]"
    assert any(r.startswith("submitit") and 'extra == "cluster"' in r
               for r in reqs)   # Dask / Slurm grids, MLflow: "sftkd_edu[cluster]"
    assert meta.get_payload() == (ROOT / "README.md").read_text(encoding="utf-8")   # the long description is the README
    with tarfile.open(sdist) as t:
        members = set(t.getnames())
    base = f"sftkd_edu-{v}"
    assert {f"{base}/{p}" for p in ("LICENSE", "setup.py", "pyproject.toml", "README.md")} <= members
    assert {f"{base}/tutorials/{p.name}" for p in TUTORIALS} <= members


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory):
    "A fresh venv in a temporary folder with the wheel installed; returns (bin folder, env without the checkout)."
    whl, _ = dist
    d = tmp_path_factory.mktemp("fresh")
    r = run([sys.executable, "-m", "venv", d / "venv"], cwd=d)
    assert r.returncode == 0, r.stderr
    py = d / "venv" / "bin" / "python"
    site = run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=d).stdout.strip()
    Path(site, "_borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    # a kernel papermill starts is this venv's python
    env["PATH"] = f"{d / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    r = run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", whl], cwd=d, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return d / "venv" / "bin", env, d


def test_installed_wheel_is_the_package_imported(venv):
    bin_, env, d = venv
    code = ("import json, sftkd_edu\n"
            "from importlib.metadata import distribution, version, PackageNotFoundError\n"
            "from packaging.requirements import Requirement\n"
            "bad = []\n"
            "for r in map(Requirement, distribution('sftkd_edu').requires or []):\n"
            "    if r.marker and not r.marker.evaluate({'extra': ''}): continue\n"
            "    try: v = version(r.name)\n"
            "    except PackageNotFoundError: bad.append(f'{r}: missing'); continue\n"
            "    if not r.specifier.contains(v, prereleases=True): bad.append(f'{r}: {v} installed')\n"
            "print(json.dumps(dict(file=sftkd_edu.__file__, version=sftkd_edu.__version__, bad=bad,\n"
            "                      dist=str(distribution('sftkd_edu').locate_file('sftkd_edu')))))\n")
    r = run([bin_ / "python", "-c", code], cwd=d, env=env)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert Path(info["file"]).is_relative_to(d / "venv") and not Path(info["file"]).is_relative_to(ROOT)
    assert info["version"] == sftkd_edu.__version__ and info["bad"] == []


def test_sftkd_from_the_wheel(venv):
    bin_, env, d = venv
    cwd = d / "work"; cwd.mkdir()
    sftkd = bin_ / "sftkd"
    r = run([sftkd, "--version"], cwd, env)
    assert r.returncode == 0 and r.stdout.strip() == f"sftkd_edu {sftkd_edu.__version__}", r.stderr
    r = run([sftkd, "--help"], cwd, env)
    assert r.returncode == 0 and all(c in r.stdout for c in ("quickstart", "tutorials", "docs", "readme"))
    # the tutorials the package carries, copied out for a learner
    r = run([sftkd, "tutorials", "learn"], cwd, env)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (cwd / "learn").iterdir()) == [p.name for p in TUTORIALS]
    assert all((cwd / "learn" / p.name).read_bytes() == p.read_bytes() for p in TUTORIALS)
    r = run([sftkd, "tutorials", "learn"], cwd, env)
    assert r.returncode == 2 and "use --force to overwrite" in r.stderr and TUTORIALS[0].name in r.stderr
    # no checkout here: the README generator says so instead of guessing
    r = run([sftkd, "readme", "--check"], cwd, env)
    assert r.returncode == 2 and "no sftkd_edu checkout" in r.stderr
    # the main job, tiny, from the wheel's own copy of the quickstart tutorial
    r = run([sftkd, "quickstart", "--out", "q", "--quiet", "--param", "n_train=200", "--param", "n_test=100",
             "--param", "teacher=resnet8", "--param", "teacher_epochs=1", "--param", "student_epochs=1"], cwd, env,
            timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = cwd / "q"
    assert sorted(p.name for p in out.iterdir()) == ["01_quickstart.ipynb", "quickstart.html", "quickstart.json"]
    rec = json.loads((out / "quickstart.json").read_text())
    assert rec["params"]["n_train"] == 200 and rec["versions"]["sftkd_edu"] == sftkd_edu.__version__
    assert [row["arm"] for row in rec["table"]] == ["standard teacher", "SFTN teacher", "student alone",
                                                    "KD ← standard", "KD ← SFTN"]
    assert "| arm | model |" in r.stdout
    html = (out / "quickstart.html").read_text()
    # students', teachers', the trainings' timeline
    assert html.count('class="plotly-graph-div"') == 3 and "<script src=" not in html
