"""Publish the API's OpenAPI document: ``python -m aria.api.openapi [docs/openapi.json]``.

A test compares the committed file with :func:`render`, so the published document
cannot drift from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aria.api.app import openapi_document

__all__ = ["render"]


def render() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs/openapi.json")
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
