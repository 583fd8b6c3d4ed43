"""Pick lists and packing slips as PDF, drawn with reportlab (pure Python, from PyPI: no system
libraries to install). A4, tables whose header repeats on each page, text embedded in a TrueType
font so it can be searched and copied: DejaVu Sans where the system has it (Latin, Greek,
Cyrillic and more), else Bitstream Vera, which reportlab ships (Latin).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from services.fulfillment.domain.pick_lists import PackingSlip, PickList
from shared.clock import parse

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
_VERA = Path(reportlab.__file__).resolve().parent / "fonts"


def _register_fonts() -> tuple[str, str, str]:
    """The regular and bold font names to draw with (registered once), and the mark of a box to
    tick (a ballot box where the font has one)."""
    for regular, bold, box in (
        (_DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf", "☐"),
        (_VERA / "Vera.ttf", _VERA / "VeraBd.ttf", "[  ]"),
    ):
        if regular.is_file() and bold.is_file():
            pdfmetrics.registerFont(TTFont("Print", str(regular)))
            pdfmetrics.registerFont(TTFont("Print-Bold", str(bold)))
            pdfmetrics.registerFontFamily("Print", normal="Print", bold="Print-Bold")
            return "Print", "Print-Bold", box
    return "Helvetica", "Helvetica-Bold", "[  ]"  # the PDF standard font: Latin-1 only


REGULAR, BOLD, BOX = _register_fonts()
TITLE = ParagraphStyle("title", fontName=BOLD, fontSize=16, leading=20, spaceAfter=2 * mm)
META = ParagraphStyle("meta", fontName=REGULAR, fontSize=8.5, leading=11, textColor=colors.HexColor("#444444"))
HEADING = ParagraphStyle("heading", fontName=BOLD, fontSize=12, leading=15, spaceBefore=4 * mm, spaceAfter=1 * mm)
CELL = ParagraphStyle("cell", fontName=REGULAR, fontSize=9.5, leading=12)
CELL_BOLD = ParagraphStyle("cell-bold", parent=CELL, fontName=BOLD)
NOTE = ParagraphStyle("note", parent=CELL, textColor=colors.HexColor("#aa0000"))
HEAD = ParagraphStyle("head", fontName=BOLD, fontSize=8, leading=10)
SMALL = ParagraphStyle("small", parent=CELL, fontSize=7.5, leading=10)
_GRID = TableStyle([
    ("LINEBELOW", (0, 0), (-1, 0), 1.2, colors.black),
    ("LINEBELOW", (0, 1), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("ALIGN", (-1, 0), (-1, -1), "LEFT"),
    ("TOPPADDING", (0, 0), (-1, -1), 2),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
])  # fmt: skip
WIDTH = A4[0] - 28 * mm


def when(moment: str) -> str:
    """A time as a person reads it on paper: UTC to the minute."""
    return parse(moment).strftime("%Y-%m-%d %H:%M UTC")


def pdf(document: PickList | PackingSlip) -> bytes:
    """The PDF of a pick list or a packing slip."""
    out = io.BytesIO()
    if isinstance(document, PickList):
        title, story = f"Pick list {document.location_name}", _pick_list(document)
    else:
        title, story = f"Packing slip {document.order_ref}", _packing_slip(document)
    page = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=14 * mm, bottomMargin=14 * mm,
        title=title, author="fulfillment", creator="fulfillment platform",
        invariant=True,  # no creation time or random id stamped in: the same document, the same bytes
    )  # fmt: skip
    page.build(story)
    return out.getvalue()


def _text(value: object, style: ParagraphStyle = CELL) -> Paragraph:
    return Paragraph(escape(str(value)), style)


def _table(head: Sequence[str], rows: list[list[Paragraph]], widths: Sequence[float]) -> Table:
    table = Table([[_text(h.upper(), HEAD) for h in head], *rows], colWidths=[w * WIDTH for w in widths], repeatRows=1)
    table.setStyle(_GRID)
    return table


def _head(title: str, meta: str) -> list[Flowable]:
    """How every document opens: its title, one line of what it is, a gap."""
    return [_text(title, TITLE), _text(meta, META), Spacer(1, 4 * mm)]


def _pick_list(doc: PickList) -> list[Flowable]:
    story = _head(
        f"Pick list: {doc.location_name}",
        f"Location {doc.location_id} · {len(doc.fulfillment_orders)} fulfillment orders · {doc.units} units · "
        f"generated {when(doc.generated_at)}",
    )
    if doc.more:
        story.append(_text("More fulfillment orders are in packing than one list takes: print the next list "
                           "once these are packed.", NOTE))  # fmt: skip
    if doc.lines:
        rows = [
            [_text(BOX), _text(line.bin or "—", CELL_BOLD), _text(line.sku),
             _text(line.title), _text(line.quantity, CELL_BOLD),
             _text(", ".join(f"{d.order_ref} × {d.quantity}" for d in line.destinations))]
            for line in doc.lines
        ]  # fmt: skip
        story.append(_table(["", "Bin", "SKU", "Item", "Qty", "Orders"], rows, (0.05, 0.11, 0.21, 0.24, 0.06, 0.33)))
    else:
        story.append(_text("Nothing to pick."))
    story.append(_text("Fulfillment orders on this list", HEADING))
    rows = [
        [_text(fo.order_ref, CELL_BOLD), _text(fo.customer_name), _text(fo.units),
         _text(fo.fulfillment_order_id, SMALL),
         _text(f"printed before: {when(fo.printed_before)}", NOTE) if fo.printed_before else _text("first print")]
        for fo in doc.fulfillment_orders
    ]  # fmt: skip
    story.append(
        _table(["Order", "Customer", "Units", "Fulfillment order", "Pick list printed"], rows,
               (0.15, 0.18, 0.09, 0.35, 0.23))
    )  # fmt: skip
    return story


def _packing_slip(doc: PackingSlip) -> list[Flowable]:
    ship_to = "<br/>".join(escape(line) for line in doc.ship_to)
    customer = f"{escape(doc.customer_name)}<br/>{escape(doc.customer_email)}"
    address = Table(
        [[Paragraph(f"<b>Ship to</b><br/>{ship_to}", CELL), Paragraph(f"<b>Customer</b><br/>{customer}", CELL)]],
        colWidths=[WIDTH / 2, WIDTH / 2],
    )
    address.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    rows = [
        [_text(line.sku), _text(line.title), _text(line.bin or "—"), _text(line.quantity, CELL_BOLD)]
        for line in doc.lines
    ]
    head = _head(
        f"Packing slip: order {doc.order_ref}",
        f"Ordered {when(doc.ordered_at)} · ships from {doc.location_name} · "
        f"fulfillment order {doc.fulfillment_order_id}",
    )
    return [
        *head,
        address,
        Spacer(1, 4 * mm),
        _table(["SKU", "Item", "Bin", "Qty"], rows, (0.22, 0.5, 0.16, 0.12)),
        Spacer(1, 2 * mm),
        _text(f"{doc.units} units · printed {when(doc.generated_at)}", META),
    ]
