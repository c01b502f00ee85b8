"""Tutorial 02 in a real JupyterLab, driven by Playwright through Debian's Chromium (no browser download).

The test starts its own JupyterLab server on 127.0.0.1 (token, temporary settings with
`windowingMode: none`), runs all cells, steps the SFTN stepper through every stage, moves the
λ_KL slider, saves a screenshot of the loss stage in its output folder, and stops the server and
its kernels. Without Chromium it is skipped with the reason (install it with `apt-get install chromium`); CI sets
SFTKD_REQUIRE_BROWSER=1, so there a missing Chromium fails. SFTKD_NO_BROWSER=1 skips it anyway.
"""
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SFTKD_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TINY = dict(n_train=200, n_test=100, batch_size=8, epochs=1,
            progress=False)   # the default models: the shipped trained ones


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _procs_mentioning(text):
    r = subprocess.run(["pgrep", "-f", text], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split() if int(p) != os.getpid()]


@pytest.fixture
def lab(tmp_path):
    if os.environ.get("SFTKD_NO_BROWSER"):
        pytest.skip("SFTKD_NO_BROWSER is set")
    if not Path(CHROMIUM).exists():
        why = f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium), as .ci/run does"
        if os.environ.get("SFTKD_REQUIRE_BROWSER") == "1": pytest.fail(why)
        pytest.skip(why)
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    root = tmp_path / "lab"
    root.mkdir()
    nb = parameterize_notebook(load_notebook_node(str(ROOT / "tutorials" / "02_inside_sftn.ipynb")), TINY)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}   # no kernel picker
    nbformat.write(nb, root / "inside.ipynb")
    settings = tmp_path / "settings"
    for ext, value in {"notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
                       "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}.items():
        f = settings / "@jupyterlab" / f"{ext}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    port, token = _free_port(), secrets.token_hex(16)
    # through the environment: a command-line token would be visible to every user in `ps`
    env["JUPYTER_TOKEN"] = token
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.root_dir={root}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"JupyterLab exited early; see {tmp_path / 'jupyterlab.log'}")
                time.sleep(0.5)
        assert token not in " ".join(open(f"/proc/{proc.pid}/cmdline").read().split("\0")), "the token is visible in ps"
        yield f"http://127.0.0.1:{port}/lab/tree/inside.ipynb?token={token}", tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)              # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        for _ in range(20):                           # kernels name their connection file under our runtime dir
            left = _procs_mentioning(str(tmp_path / "runtime"))
            if not left:
                break
            time.sleep(0.5)
        assert not left, f"processes left behind: {left}"


def test_stepper_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright
    url, out = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            try:                                      # a kernel picker, should this JupyterLab still ask
                page.locator(".jp-Dialog .jp-mod-accept").click(timeout=5_000)
            except Exception:
                pass
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            last_prompt = page.locator(".jp-CodeCell").last.locator(".jp-InputPrompt")
            expect(last_prompt).to_have_text(re.compile(r"\[\d+\]"),
                                             timeout=300_000)   # every cell ran: the kernel is free
            stepper = page.locator(".sftkd-stepper").first
            readout = stepper.locator(".sftkd-readout")
            expect(readout).to_contain_text("Stage 1/7: batch", timeout=30_000)
            expect(stepper.locator(".js-plotly-plot")).to_have_count(1, timeout=60_000)   # the figure renders offline
            texts = [readout.inner_text()]
            for k, name in enumerate(["teacher forward", "bridges", "branches", "losses", "backward", "step"], start=2):
                stepper.locator(".widget-button", has_text="Next").click()
                expect(readout).to_contain_text(f"Stage {k}/7: {name}", timeout=60_000)
                texts.append(readout.inner_text())
            assert len(set(texts)) == 7
            agree = [float(x) for x in re.findall(r"agrees with teacher \(%\)\s*([0-9.]+)", texts[3])]
            # visible signal: the trained branches follow the trained teacher
            assert len(agree) == 2 and min(agree) > 50, texts[3]
            for _ in range(2):                                        # back to the losses stage
                stepper.locator(".widget-button", has_text="Back").click()
            expect(readout).to_contain_text("Stage 5/7: losses", timeout=30_000)
            before = readout.inner_text()
            assert "branch_kl" in before and "3.0" in before
            play = page.locator(".sftkd-readout",
                                has_text="KL(teacher ‖ student)").first   # the temperature playground, left at T = 10
            probs = re.search(r"true class \d+: ([0-9.]+)", play.inner_text())
            # trained: even at T = 10 well above a uniform 1/100
            assert probs and float(probs.group(1)) > 2 / 100, play.inner_text()
            kl_readout = stepper.locator(".widget-slider").first.locator(".widget-readout")
            kl_readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("6")
            page.keyboard.press("Enter")
            expect(readout).to_contain_text(re.compile(r"weight lam_kl\s*6\.0"),
                                            timeout=60_000)   # rebuilt with λ_KL = 6
            expect(readout).to_contain_text("Stage 5/7: losses")
            after = readout.inner_text()
            kl = lambda t: float(next(l for l in t.splitlines() if l.startswith("branch_kl")).split()[-1])
            assert kl(after) == pytest.approx(2 * kl(before), rel=1e-3)   # λ_KL doubled, the same iteration otherwise
            assert stepper.locator(".sftkd-error").inner_text().strip() == ""
            stepper.scroll_into_view_if_needed()
            stepper.screenshot(path=str(out / "stepper_losses.png"))
            assert (out / "stepper_losses.png").stat().st_size > 10_000
        except Exception:
            page.screenshot(path=str(out / "failure.png"), full_page=True)   # what the browser showed, for the log
            raise
        finally:
            browser.close()
