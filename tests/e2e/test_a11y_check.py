"""`make lint`'s Lighthouse check (veche.local.check_a11y) can fail: on a page with an image
without alt text, a nameless button and no language it reports a score below 100 and names
those audits, while the built home page scores 100."""

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support.browser import CHROMIUM
from veche.local import check_a11y

pytestmark = [pytest.mark.browser]

if not Path(CHROMIUM).exists() or not check_a11y.LIGHTHOUSE.is_file():
    pytest.skip("needs Debian's chromium and lighthouse (make install)", allow_module_level=True)

BAD_PAGE = b"""<!doctype html><html><head><title>x</title></head><body>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<button></button>
</body></html>"""


@pytest.fixture
def bad_site(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_bytes(BAD_PAGE)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_an_inaccessible_page_fails_the_check_and_is_told_why(bad_site):
    score, failing = check_a11y.audit(bad_site)
    assert score < check_a11y.MIN_SCORE
    ids = {line.split(":", 1)[0] for line in failing}
    assert {"image-alt", "button-name", "html-has-lang"} <= ids, failing


def test_the_score_comes_from_the_report_and_counts_only_weighted_binary_audits():
    report = {
        "categories": {
            "accessibility": {
                "score": 0.91,
                "auditRefs": [
                    {"id": "image-alt", "weight": 10},
                    {"id": "color-contrast", "weight": 7},
                    {"id": "tabindex", "weight": 0},
                    {"id": "custom-controls", "weight": 0},
                ],
            }
        },
        "audits": {
            "image-alt": {"title": "Images have alt", "score": 0, "scoreDisplayMode": "binary"},
            "color-contrast": {"title": "Contrast", "score": 1, "scoreDisplayMode": "binary"},
            "tabindex": {"title": "No tabindex > 0", "score": 0, "scoreDisplayMode": "binary"},
            "custom-controls": {"title": "Manual", "score": None, "scoreDisplayMode": "manual"},
        },
    }
    assert check_a11y.score_of(report) == (0.91, ["image-alt: Images have alt"])
