"""Container health check: exits 0 when the URL answers 200, 1 otherwise.

The image has no curl or wget, so compose's `healthcheck` runs this with the image's Python:
`python deploy/healthcheck.py http://127.0.0.1:8001/readyz`."""

import sys
import urllib.error
import urllib.request


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: healthcheck.py URL", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
