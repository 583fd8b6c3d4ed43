"""Emails rendered from Jinja2 files a shop can restyle.

Each kind of email has three files in `services/notifications/templates/`:
`<kind>.subject.txt`, `<kind>.txt` (plain text) and `<kind>.html`; the HTML ones extend
`layout.html`, the text ones `layout.txt`. A shop restyles them by pointing
NOTIFICATION_TEMPLATES_DIR at a folder with its own versions of any of these files; the
files it does not override come from the built-in set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notifications.domain.emails import EmailKind
from services.notifications.domain.notification import RenderedEmail

BUILT_IN = Path(__file__).resolve().parent / "templates"


class EmailTemplates:
    def __init__(self, override_dir: Path | None = None, shop_name: str = "The Shop") -> None:
        folders = [BUILT_IN] if override_dir is None else [override_dir, BUILT_IN]
        self.shop_name = shop_name
        self.environment = Environment(
            loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
            # HTML is escaped (buyer names and item titles are data); text and subjects are not.
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,  # a typo in a template fails loudly, not as a blank
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def check(self) -> None:
        """Load every template at start, so a broken restyle stops the service, not an email."""
        for kind in EmailKind:
            for suffix in ("subject.txt", "txt", "html"):
                self.environment.get_template(f"{kind.value}.{suffix}")

    def render(self, kind: EmailKind, context: Mapping[str, Any]) -> RenderedEmail:
        values = {"shop_name": self.shop_name, **context}
        subject = self.environment.get_template(f"{kind.value}.subject.txt").render(values)
        return RenderedEmail(
            subject=" ".join(subject.split()),
            text=self.environment.get_template(f"{kind.value}.txt").render(values),
            html=self.environment.get_template(f"{kind.value}.html").render(values),
        )
