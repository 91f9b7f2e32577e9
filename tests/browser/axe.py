"""An accessibility check in the page: axe-core (from the npm registry, fetched into the
git-ignored .cache/ by scripts/bootstrap.sh; ``AXE_CORE_JS`` may name another copy) run in
the browser, its serious and critical violations returned."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

AXE = Path(__file__).resolve().parents[2] / ".cache" / "axe-core-4.14.1" / "package" / "axe.min.js"


@cache
def _source() -> str:
    path = Path(os.environ.get("AXE_CORE_JS", AXE))
    if not path.is_file():
        pytest.fail(f"{path} is missing: ./scripts/bootstrap.sh fetches axe-core", pytrace=False)
    return path.read_text(encoding="utf-8")


def serious_violations(page) -> list[str]:
    """axe-core's WCAG 2 A and AA rules on the page as it is: each serious or critical
    violation as "rule: the first element's selector (help)". Evaluated through the
    browser's protocol, so the page's Content-Security-Policy does not block it."""
    page.evaluate(_source())
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {runOnly: ["wcag2a", "wcag2aa"]});
            return result.violations
                .filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => `${v.id}: ${v.nodes[0].target.join(" ")} (${v.help})`);
        }"""
    )
    return found
