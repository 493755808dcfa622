"""`make lint`'s accessibility check of the built page: Lighthouse (from npm, pinned in
web/package.json) audits it in Debian's Chromium, and its accessibility score must stay at
MIN_SCORE on every page it can reach without the services.

    python -m veche.local.check_a11y

It serves web/dist with web/server.py alone on a free port, so the pages are the home page and
the room page of a room the missing API cannot find (its "not found" screen); the meeting,
pre-join, lobby and ended screens need the services and are held to 0 axe-core violations by
the browser tests instead (tests/e2e/test_browser_expect.py and the others). Lighthouse's
accessibility audits are axe-core's rules, weighted; the failing ones are printed by name.

Without Chromium it says so and checks nothing (the browser tests skip the same way)."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from veche.local.stack import ROOT, build_web_client, free_port

CHROMIUM = "/usr/bin/chromium"
LIGHTHOUSE = ROOT / "web" / "node_modules" / "lighthouse" / "cli" / "index.js"
# Lighthouse scores 0-1; the page scores 1.0 today, and any failing audit lowers it.
MIN_SCORE = 1.0
PAGES = {"home": "/", "room not found": f"/r/{uuid.uuid4()}"}


def audit(url: str) -> tuple[float, list[str]]:
    """The accessibility score of one page and the titles of its failing audits."""
    run = subprocess.run(
        [
            "node",
            str(LIGHTHOUSE),
            url,
            "--only-categories=accessibility",
            "--output=json",
            "--output-path=stdout",
            "--quiet",
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
        ],
        env={**os.environ, "CHROME_PATH": CHROMIUM},
        capture_output=True,
        text=True,
        timeout=180,
    )
    if run.returncode != 0:
        raise RuntimeError(f"lighthouse failed on {url}: {run.stderr.strip()[-2000:]}")
    return score_of(json.loads(run.stdout))


def score_of(report: dict[str, Any]) -> tuple[float, list[str]]:
    """A Lighthouse report's accessibility score and its failing audits (id: title)."""
    category = report["categories"]["accessibility"]
    audits = report["audits"]
    failing = [
        f"{ref['id']}: {audits[ref['id']]['title']}"
        for ref in category["auditRefs"]
        if ref["weight"] > 0
        and audits[ref["id"]].get("scoreDisplayMode") == "binary"
        and (audits[ref["id"]].get("score") or 0) < 1
    ]
    return float(category["score"] or 0), failing


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("web/server.py exited before it was ready")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("web/server.py was not ready within 20 s")


def main() -> int:
    if not Path(CHROMIUM).exists():
        print(f"check_a11y: {CHROMIUM} is missing (install Debian's chromium): nothing checked")
        return 0
    if not LIGHTHOUSE.is_file():
        print("check_a11y: lighthouse is not installed; run `make install`", file=sys.stderr)
        return 1
    build_web_client()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "web" / "server.py")],
        env={**os.environ, "WEB_HOST": "127.0.0.1", "WEB_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    problems = []
    try:
        wait_ready(base, server)
        for name, path in PAGES.items():
            score, failing = audit(base + path)
            print(f"check_a11y: {name}: Lighthouse accessibility {score * 100:.0f}")
            if score < MIN_SCORE:
                problems.append(
                    f"{name}: score {score * 100:.0f} < {MIN_SCORE * 100:.0f}; failing: {failing}"
                )
    finally:
        server.terminate()
        server.wait(10)
    for problem in problems:
        print(f"check_a11y: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
