"""The warehouse's printouts as documents: HTML from the Jinja2 templates beside this module
(`html`), PDF drawn with reportlab (`pdf`, services/fulfillment/printing/pdf.py). Both take a
`PickList` or a `PackingSlip` (services/fulfillment/domain/pick_lists.py) and show the same facts.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.fulfillment.domain.pick_lists import PackingSlip, PickList

from .pdf import pdf, when

__all__ = ["html", "pdf", "when"]

TEMPLATES = Path(__file__).resolve().parent / "templates"


_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",)),  # names, titles and addresses are data
    undefined=StrictUndefined,  # a typo in a template fails loudly, not as a blank
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENVIRONMENT.filters["when"] = when


def html(document: PickList | PackingSlip) -> str:
    """The printable HTML page of a pick list or a packing slip."""
    name = "pick_list.html" if isinstance(document, PickList) else "packing_slip.html"
    return _ENVIRONMENT.get_template(name).render(doc=document)
