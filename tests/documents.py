"""Aggregates as plain documents, for the tests of the store's own machinery (inbox, outbox,
relay, concurrency), which need no domain: the services store typed aggregates only."""

from __future__ import annotations

from shared.aggregates import Document


class AsDocument:
    """The mapping of aggregates kept as the stored documents themselves: none at all."""

    def load(self, document: Document) -> Document:
        return document

    def dump(self, aggregate: Document) -> Document:
        return aggregate


AS_DOCUMENT = AsDocument()
