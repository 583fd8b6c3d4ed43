"""Writes the two lock files from what the virtualenv has installed: `make lock`.

`requirements.lock` pins the runtime dependencies (pyproject's `dependencies` and everything they
pull in): what the image installs. `requirements-dev.lock` pins what only development needs on top
(the `dev` extra: the embedded broker, store and SMTP sink, test, lint and validator packages) and
includes the runtime lock, so `pip install -r requirements-dev.lock` gives `make run` and
`make test` everything.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: Iterable[str]) -> dict[str, str]:
    """Every installed distribution the requirements `roots` need, extras and markers applied:
    canonical name -> `Name==version`."""
    found: dict[str, str] = {}
    pending = [(Requirement(text), "") for text in roots]
    seen: set[tuple[str, str]] = set()
    while pending:
        requirement, for_extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": for_extra}):
            continue
        name = canonical(requirement.name)
        extras = sorted(requirement.extras)
        if (name, ",".join(extras)) in seen:
            continue
        seen.add((name, ",".join(extras)))
        dist = metadata.distribution(requirement.name)
        found[name] = f"{dist.metadata['Name']}=={dist.version}"
        for text in dist.requires or []:
            child = Requirement(text)
            for extra in ["", *extras]:
                if child.marker is None or child.marker.evaluate({"extra": extra}):
                    pending.append((child, extra))
                    break
    return found


def render(header: str, pins: Iterable[str]) -> str:
    return header + "".join(f"{pin}\n" for pin in sorted(pins, key=lambda pin: canonical(pin.partition("==")[0])))


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = closure(project["dependencies"])
    dev = closure(project["optional-dependencies"]["dev"])
    RUNTIME_LOCK.write_text(
        render(
            "# Runtime dependencies (what the image installs), transitive ones included, pinned.\n"
            "# Regenerate with: make lock (writes requirements-dev.lock too)\n",
            runtime.values(),
        )
    )
    DEV_LOCK.write_text(
        render(
            "# Development-only dependencies (embedded broker/store/SMTP sink, tests, lint, validators),\n"
            "# pinned, on top of the runtime lock. Regenerate with: make lock\n-r requirements.lock\n",
            (pin for name, pin in dev.items() if name not in runtime),
        )
    )


if __name__ == "__main__":
    main()
