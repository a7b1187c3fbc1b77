"""Record the sha256 of bitnet.cpp's source archives in aria/engines/data/bitnet.toml.

Run on a machine that reaches GitHub (ARIA's development machines cannot):

    .venv/bin/python scripts/pin_bitnet_sources.py BITNET_COMMIT SUBMODULE_COMMIT

SUBMODULE_COMMIT is the gitlink of 3rdparty/llama.cpp at BITNET_COMMIT
(`git ls-tree BITNET_COMMIT 3rdparty/llama.cpp`). Prints and writes each archive's sha256.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import httpx

DATA = Path(__file__).resolve().parents[1] / "aria" / "engines" / "data" / "bitnet.toml"


def main() -> None:
    commits = sys.argv[1:]
    if len(commits) != 2 or not all(re.fullmatch(r"[0-9a-f]{40}", c) for c in commits):
        sys.exit(__doc__)
    text = DATA.read_text(encoding="utf-8")
    blocks = text.split("[[archives]]")
    for index, commit in enumerate(commits, start=1):
        url = re.search(r'url = "([^"]+)"', blocks[index]).group(1).format(commit=commit)  # type: ignore[union-attr]
        hasher = hashlib.sha256()
        with httpx.stream("GET", url, follow_redirects=True, timeout=120) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                hasher.update(chunk)
        digest = hasher.hexdigest()
        print(f"{url}  sha256 {digest}")
        block = re.sub(r'commit = "[0-9a-f]*"', f'commit = "{commit}"', blocks[index], count=1)
        blocks[index] = re.sub(r'sha256 = "[0-9a-f]*"', f'sha256 = "{digest}"', block, count=1)
    DATA.write_text("[[archives]]".join(blocks), encoding="utf-8")


if __name__ == "__main__":
    main()
