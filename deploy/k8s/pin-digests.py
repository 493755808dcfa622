#!/usr/bin/env python3
"""Pins the production overlay's images by digest: for each entry of `images:` in
deploy/k8s/overlays/production/kustomization.yaml, asks the registry for the digest of
`newName:newTag` (or `name:newTag`) and rewrites that entry's `digest:` line in place, keeping
every comment. Run by whoever releases, after pushing the images; CI never runs it (it needs
the registry and its credentials).

    deploy/k8s/pin-digests.py                 # crane if it is on PATH, else docker buildx
    deploy/k8s/pin-digests.py --tool docker   # docker buildx imagetools inspect
    deploy/k8s/pin-digests.py --dry-run       # print the digests, change nothing

Needs only Python 3 and the tool: `crane digest REF`, or `docker buildx imagetools inspect
--format '{{json .Manifest}}' REF`."""

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

OVERLAY = Path(__file__).resolve().parent / "overlays" / "production" / "kustomization.yaml"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
FIELD = re.compile(
    r"^(?P<indent>\s*)(?P<dash>-\s+)?(?P<key>name|newName|newTag|digest):\s*(?P<value>.*?)\s*$"
)


def entries(lines: list[str]) -> list[dict[str, object]]:
    """The `images:` entries: their fields, and the index of their `digest:` line."""
    found: list[dict[str, object]] = []
    inside = False
    for number, line in enumerate(lines):
        if re.match(r"^images:\s*$", line):
            inside = True
            continue
        if inside and re.match(r"^\S", line) and not line.startswith("#"):
            break  # the next top-level key
        match = FIELD.match(line) if inside else None
        if not match:
            continue
        if match["dash"]:
            found.append({})
        if not found:
            continue
        value = match["value"].split(" #")[0].strip().strip("\"'")
        found[-1][match["key"]] = value
        if match["key"] == "digest":
            found[-1]["line"] = number
    return found


def digest_of(reference: str, tool: str) -> str:
    if tool == "crane":
        out = subprocess.run(
            ["crane", "digest", reference], capture_output=True, text=True, check=True
        ).stdout
        digest = out.strip()
    else:
        out = subprocess.run(
            ["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", reference],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        digest = json.loads(out)["digest"]
    if not DIGEST.match(digest):
        raise ValueError(f"{reference}: {tool} answered {digest!r}, not a sha256 digest")
    return digest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", type=Path, default=OVERLAY)
    parser.add_argument("--tool", choices=["crane", "docker"], default=None)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    tool = args.tool or ("crane" if shutil.which("crane") else "docker")
    if shutil.which(tool) is None:
        print(f"pin-digests: {tool} is not on PATH (crane, or docker with buildx)", file=sys.stderr)
        return 2
    lines = args.overlay.read_text().splitlines(keepends=True)
    images = entries(lines)
    if not images:
        print(f"pin-digests: no images in {args.overlay}", file=sys.stderr)
        return 1
    for image in images:
        if "line" not in image or "newTag" not in image:
            print(f"pin-digests: {image.get('name')}: needs newTag and digest lines", file=sys.stderr)
            return 1
        reference = f"{image.get('newName') or image['name']}:{image['newTag']}"
        try:
            digest = digest_of(reference, tool)
        except (subprocess.CalledProcessError, ValueError, KeyError) as exc:
            detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
            print(f"pin-digests: {reference}: {detail}", file=sys.stderr)
            return 1
        print(f"{reference} {digest}")
        number = int(str(image["line"]))
        lines[number] = re.sub(r"sha256:[0-9a-fA-F]*", digest, lines[number], count=1)
        if digest not in lines[number]:
            lines[number] = re.sub(r"digest:.*", f"digest: {digest}", lines[number])
    if not args.dry_run:
        args.overlay.write_text("".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
