"""Print pip constraints that pin every dependency of pyproject.toml (and its dev extra) to the
lowest version its range declares: ``make test-oldest`` installs with them and runs the suite.

python3 scripts/lowest_versions.py [pyproject.toml] > constraints-oldest.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# "name>=1.2,<3" → ("name", "1.2"); extras and markers are not used in this project
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$")


def lowest_pins(pyproject: Path) -> list[str]:
    """``name==lowest`` for every requirement with a ``>=`` bound; an unbounded one is an error
    (the oldest supported version would be undefined)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    pins = []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read requirement {requirement!r}")
        name, spec = match.groups()
        lower = re.search(r">=\s*([^,\s]+)", spec)
        if lower is None or "<" not in spec.replace("<=", "<"):
            raise SystemExit(f"{requirement!r} needs both a lower (>=) and an upper (<) bound")
        pins.append(f"{name}=={lower.group(1)}")
    return pins


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
    print("\n".join(lowest_pins(path)))
