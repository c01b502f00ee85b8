"""Ships the tutorials inside the wheel without a second copy in git.

`tutorials/*.ipynb` stay the only place the tutorials are edited; building a wheel copies them into
the built package as `sftkd_edu/tutorials/` (package data), where `sftkd_edu.experiments.tutorial_path`
finds them through `importlib.resources`. An editable install needs no copy: the checkout's
`tutorials/` is found next to the package. Everything else about the package is in pyproject.toml.
"""
import shutil
from pathlib import Path
from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class build_py_with_tutorials(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False): return
        src = sorted((HERE / "tutorials").glob("[0-9]*.ipynb"))
        if not src: raise RuntimeError(f"no tutorials in {HERE / 'tutorials'}: the wheel would ship without them")
        dest = Path(self.build_lib) / "sftkd_edu" / "tutorials"
        if dest.exists(): shutil.rmtree(dest)   # no stale tutorial from an earlier build
        dest.mkdir(parents=True)
        for p in src: shutil.copyfile(p, dest / p.name)


setup(cmdclass={"build_py": build_py_with_tutorials})
