"""lwd dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

A debug-preset online loop (fake4, 4 robots in 2 robot-client processes, coordinator, learner) runs as
a subprocess; `lwd dashboard --port 0` serves it; the page must list the fleet's robots with their
tasks and policy versions, update live, and a control request without the token must be refused.
A screenshot is saved to test-artifacts/dashboard.png and to pytest's tmp dir.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fleet_support import REPO  # tests/fleet is on sys.path (conftest.py)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FAKE4_TASKS = {"reach-red", "reach-blue", "reach-green", "reach-yellow"}

# The online loop of the debug preset, stopped by the test (SIGTERM) once it has seen enough.
FLEET_CHILD = """
import dataclasses, sys
from lwd.configs.online import Budget
from lwd.configs.presets import ONLINE
from lwd.pipeline.online import run_online
cfg = dataclasses.replace(ONLINE["debug"], heartbeat_s=1.0, stop_timeout_s=20.0,
                          budget=Budget(max_learner_steps=None, max_wall_s=150.0))
run_online(cfg, sys.argv[1], sys.argv[2], sys.argv[3], display=False)
"""


def chromedriver() -> str | None:
    """chromedriver next to Debian's chromium, installed by scripts/ensure_chromium.sh if absent."""
    if Path(CHROMEDRIVER).is_file() and Path(CHROMIUM).is_file():
        return CHROMEDRIVER
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure_chromium.sh")], capture_output=True, text=True
    )
    return proc.stdout.strip() or None if proc.returncode == 0 else None


@pytest.fixture
def browser():
    pytest.importorskip("selenium", reason="selenium is not installed (pip install 'lwd[dev]')")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    driver_path = chromedriver()
    if driver_path is None:
        pytest.skip("chromium/chromedriver are missing and scripts/ensure_chromium.sh could not install them")
    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1700", "--no-first-run", "--disable-extensions"):  # fmt: skip
        opts.add_argument(a)
    # an explicit driver path: Selenium Manager is never run, nothing is downloaded
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    yield driver
    driver.quit()


def start_dashboard(run_dir: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from lwd.cli.main import entry; entry()", "dashboard", "--run-dir", str(run_dir),
         "--port", "0", "--refresh-s", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:  # the URL is printed before serving starts
        m = re.search(r"dashboard \(read-only\): (http://127\.0\.0\.1:\d+/)", line)
        if m:
            return proc, m.group(1)
    raise AssertionError(f"lwd dashboard exited ({proc.wait()}) without printing its URL")


def robot_rows(driver) -> dict[str, dict[str, str]]:
    """The robots table as displayed, read in one script call (the page redraws it on every poll)."""
    return rows_and_timestamp(driver)[0]


def rows_and_timestamp(driver) -> tuple[dict[str, dict[str, str]], float]:
    """The robots table and the server timestamp of the poll that drew it, read in one script call.

    The page draws both in one synchronous step of each poll, so one script call sees a consistent
    pair; two calls may straddle a poll and pair one poll's rows with the next poll's timestamp.
    """
    rows, ts = driver.execute_script(
        "return [[...document.querySelectorAll('#robots tbody tr')]"
        ".map(tr => [tr.dataset.robot, ...[...tr.cells].map(td => td.textContent)]),"
        " document.getElementById('last-updated').dataset.ts];"
    )
    table = {r[0]: {"task": r[2], "status": r[3], "version": r[4], "episodes": r[6]} for r in rows}
    return table, float(ts) if ts else float("nan")


def kv(driver, card: str, key: str) -> str:
    """A value shown in one of the summary cards."""
    return driver.execute_script(
        "const e = document.querySelector(`#${arguments[0]} dd[data-key='${arguments[1]}']`);"
        "return e ? e.textContent : null;",
        card,
        key,
    )


def episodes(rows: dict[str, dict[str, str]]) -> int:
    return sum(int(r["episodes"]) for r in rows.values() if r["episodes"].isdigit())


def test_dashboard_shows_a_running_fleet_in_chromium(tmp_path, fake4_dataset, fake4_sft_policy, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    fleet = subprocess.Popen(
        [sys.executable, "-c", FLEET_CHILD, str(run_dir), str(fake4_dataset), str(fake4_sft_policy)],
        stdout=open(tmp_path / "fleet.log", "w"), stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    dash, url = start_dashboard(run_dir)
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 120, poll_frequency=0.5)
        # the fleet appears: 4 robots, each with its task and a published policy version
        wait.until(lambda d: len(robot_rows(d)) == 4
                   and all(r["version"].startswith("v") and r["task"] in FAKE4_TASKS for r in robot_rows(d).values()))  # fmt: skip
        rows = robot_rows(browser)
        assert set(rows) == {f"robot-{i:03d}" for i in range(4)}
        assert {r["task"] for r in rows.values()} == FAKE4_TASKS  # fake4: one robot per task
        assert browser.find_element("id", "mode").text == "read-only"
        assert browser.find_element("id", "conn").text == "live"

        # it updates live: the robots' episode counts and the server timestamp both move on
        rows1, ts1 = rows_and_timestamp(browser)
        eps1 = episodes(rows1)
        wait.until(lambda d: episodes(robot_rows(d)) > eps1)
        rows2, ts2 = rows_and_timestamp(browser)
        assert episodes(rows2) > eps1
        assert ts2 > ts1
        # per-version rates arrive from the committed episodes' outcomes; the learner trains and
        # publishes a second version, which the page shows
        wait.until(lambda d: d.find_elements("css selector", "#versions tbody tr"))
        wait.until(lambda d: d.find_elements("css selector", "#chart-task-success path"))
        wait.until(lambda d: int(kv(d, "learner-kv", "versions published") or 0) >= 2)
        wait.until(lambda d: d.find_elements("css selector", "#chart-learner path"))
        assert int(kv(browser, "learner-kv", "step")) > 0

        # a control action from the page's origin without the token is refused
        status = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('api/action', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({action: 'promote', version: 1})}).then(r => done(r.status), e => done(String(e)));"
        )
        assert status == 403
        assert browser.find_element("id", "control").is_displayed() is False

        shot = tmp_path / "dashboard.png"
        browser.save_screenshot(str(shot))
        artifacts = REPO / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        shutil.copy(shot, artifacts / "dashboard.png")
        assert shot.stat().st_size > 10_000
    finally:
        dash.send_signal(signal.SIGINT)
        fleet.send_signal(signal.SIGTERM)
        assert dash.wait(20) == 0
        try:
            fleet.wait(90)
        except subprocess.TimeoutExpired:
            fleet.kill()
            fleet.wait()
            raise
    assert fleet.returncode == 0, (tmp_path / "fleet.log").read_text()[-3000:]


def test_dashboard_shows_substep_scores_of_chained_tasks(tmp_path, browser):
    """A fleet working on chained tasks: the per-version cells carry the mean sub-step score in brackets
    and the sub-step chart appears (it stays hidden for a fleet without stages)."""
    import sqlite3
    import time

    from selenium.webdriver.support.ui import WebDriverWait
    from test_dashboard import make_run

    run = make_run(tmp_path)
    with sqlite3.connect(run / "online" / "fleet" / "coordinator.db") as c:
        now = time.time()
        c.executemany("INSERT INTO outcomes (episode_id, robot_id, task_id, policy_version, success, intervened, "
                      "steps, intervention_steps, decided_at, substep) VALUES (?, 'robot-000', ?, 1, ?, 0, 100, 0, ?, ?)",
                      [("e1", "open-both", 0, now - 3, 0.25), ("e2", "open-both", 1, now - 2, 1.0),
                       ("e3", "unlock-drawer", 1, now - 1, None)])  # fmt: skip
    dash, url = start_dashboard(run)
    try:
        browser.get(url)
        WebDriverWait(browser, 20).until(lambda d: d.find_element("id", "substep-figure").is_displayed())
        cells = WebDriverWait(browser, 20).until(lambda d: d.execute_script(
            "const r = document.querySelector('#versions tbody tr[data-version=\"1\"]');"
            "return r ? [...document.querySelectorAll('#versions thead th')].map((th, i) => [th.textContent,"
            " r.cells[i].textContent]) : null;"))  # fmt: skip
        by_task = dict(cells)
        assert by_task["open-both"] == "50% (0.63)" and by_task["unlock-drawer"] == "100%"
    finally:
        dash.send_signal(signal.SIGTERM)
        dash.wait(20)
