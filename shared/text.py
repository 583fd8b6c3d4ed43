"""Text the platform accepts, decided once: no NUL and no terminal control characters.

A control character in a name, title, address, sku or note is never what a merchant meant:
NUL truncates strings in C libraries and some stores, ESC sequences rewrite a terminal that
shows a log line, and CR/LF split a header in an email. So every text field of every HTTP
request body (shared.http.RequestBody) and of every event (shared.catalog.Contract) is
refused when it holds a C0 control (U+0000-U+001F), DEL (U+007F) or a C1 control
(U+0080-U+009F). Free text that is multi-line by nature (a message to a fulfillment
service, an error text) may hold line breaks and tabs, and nothing else: a model names
those fields in `multi_line_fields`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_NAMES = {
    "\x00": "NUL", "\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\x1b": "ESCAPE", "\x7f": "DELETE",
}  # fmt: skip


def control_character_problem(text: str, multi_line: bool = False) -> str | None:
    """Why `text` is refused (the first control character and where it is), or None."""
    found = (_CONTROL_EXCEPT_LINE_BREAKS if multi_line else _CONTROL).search(text)
    if found is None:
        return None
    char = found.group()
    name = _CONTROL_NAMES.get(char, "control character")
    allowed = "only line breaks and tabs are allowed" if multi_line else "it must be a single line of text"
    return f"contains a control character (U+{ord(char):04X} {name}) at position {found.start()}: {allowed}"


def _problem_in(value: Any, multi_line: bool) -> str | None:
    """The first control character in a value: a string, or strings inside lists and dicts
    (nested models check themselves)."""
    if isinstance(value, str):
        return control_character_problem(value, multi_line)
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = _problem_in(item, multi_line)
            if problem:
                return f"item {index} {problem}"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _problem_in(key, multi_line) or _problem_in(item, multi_line)
            if problem:
                return f"{str(key)[:64]!r} {problem}"
    return None


FROM_THE_STORE = {"from_the_store": True}
"""Validation context of a document read back from the platform's own store: its text was
checked when it came in, so loading it (every event that touches an aggregate does) does not
pay for the check again. Pass it only where the data comes from the store."""


def _no_control_characters(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    if info.context is not None and info.context.get("from_the_store"):
        return value
    if value is None or isinstance(value, bool | int | float | BaseModel):
        return value
    multi_line = info.field_name in getattr(cls, "multi_line_fields", frozenset())
    problem = _problem_in(value, multi_line)
    if problem:
        raise PydanticCustomError("control_character", "{reason}", {"reason": problem})
    return value


def no_control_characters() -> Any:
    """The validator a base model attaches to check every text field of its subclasses:

    class RequestBody(BaseModel):
        multi_line_fields: ClassVar[frozenset[str]] = frozenset()
        _plain_text = no_control_characters()
    """
    return field_validator("*", mode="after")(_no_control_characters)


def one_line(text: str) -> str:
    """Text from outside (an SMTP server's reply, say) made safe to keep and show: each run
    of control characters and white space becomes one space."""
    return " ".join(_CONTROL.sub(" ", text).split())
