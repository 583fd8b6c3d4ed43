"""The shop's order numbers (#1001, #1002, ...): unique and without gaps, whatever the replicas,
the concurrency or the crashes.

An order is stored first, without a number (and not announced yet), then numbered by the
sequencer: one counter document (`order_numbers/orders`) holds the last number given out and the
order it went to (`holder`, and the one before it, `previous`). Numbering an order:

1. the order holds a number already: done (the step is idempotent, it never renumbers);
2. the counter's last number is written onto its holder if it is not there yet (whoever claimed
   it may have crashed before writing it): a claim is finished before the next one is made, so
   no number is left unheld. If the holder turns out to hold another number (two numberings of
   one order raced and the other won), the claim is void and the counter goes back one;
3. the next number is claimed with one conditional update of the counter (it moves only from the
   state just read: of two replicas claiming, one wins, the other goes round again), the order's
   search terms (its number's among them) are written, then the number onto the order
   (domain.number: the order and its announcements, one write).

A number is never given out twice (the counter moves one step at a time from the state read) and
never skipped (the counter only moves past a number once its holder holds it). Numbering runs one
at a time in a process (a lock: the counter is one document, and a queue beats a crowd retrying
against it); an order whose numbering did not finish (a crash) is numbered by the sweep (`run`).

What it costs a placed order (issue 15): the claim, the terms and the order's write, three
commands. The counter is not read when this process holds it as it left it (`_known`: numbering
runs under the lock, so between two numberings of this process only another replica moves it, and
then the claim, conditional on the state this process knows, matches nothing and the counter is
read again); the order is not read, its placing hands over the document it stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from services.orders import domain, search, store
from services.orders.domain import Order
from shared.clock import iso, now, now_iso
from shared.store import AggregateStore, Change, Collection, ConcurrencyConflict, Stored

log = logging.getLogger(__name__)

COUNTER = "orders"
MAX_ROUNDS = 200
SWEEP_SECONDS = 2.0
SWEEP_AFTER = timedelta(seconds=2)
"""The sweep leaves an order this young to the request that placed it."""
SWEEP_BATCH = 100


@dataclass(frozen=True)
class Counter:
    """The shop's order counter as stored: the last number claimed, the order holding that claim
    (None before the first), and the holder before it (to give a void claim back to)."""

    last: int
    holder: str | None = None
    previous: str | None = None

    def stored(self) -> dict[str, object]:
        return {"_id": COUNTER, "last": self.last, "holder": self.holder, "previous": self.previous}


class Sequencer:
    """Gives orders their numbers (see the module's docstring)."""

    def __init__(self, counters: Collection, orders: AggregateStore[Order], terms: search.Terms | None = None) -> None:
        self.counters = counters
        self.orders = orders
        self.terms = terms
        self._lock = asyncio.Lock()
        self._settled: tuple[int, str] | None = None
        """The last (number, order) this process wrote: its holder needs no looking at."""
        self._known: Counter | None = None
        """The counter as this process's last numbering left it (its holder holds its number)."""

    async def number(self, order_id: str, placed: Stored[Order] | None = None) -> Order:
        """The order with its number, numbering it if it has none yet. `placed`: the order as its
        placing just stored it (AggregateStore.insert), which saves reading it."""
        async with self._lock:
            for _ in range(MAX_ROUNDS):
                stored, placed = placed, None
                order = stored.aggregate if stored is not None else await self.orders.get(order_id)
                if order is None:
                    raise LookupError(f"order {order_id!r} does not exist")
                if order.number is not None:
                    return order
                counter = self._known or await self._counter()
                self._known = None  # known again only once this round's claim is held
                last, holder = counter.last, counter.holder
                if holder is not None and not await self._settle(counter):
                    continue  # the counter went back one: read it again
                if holder == order_id:
                    continue  # this order's own claim, written by _settle: read it again
                claimed = await self.counters.update_one(
                    {"_id": COUNTER, "last": {"$eq": last}, "holder": {"$eq": holder}},
                    {"$set": {"last": last + 1, "holder": order_id, "previous": holder}},
                )
                if claimed.modified_count == 1:
                    numbered = await self._write(order_id, last + 1, order, stored)
                    if numbered is not None and numbered.number == last + 1:
                        self._settled = (last + 1, order_id)
                        self._known = Counter(last + 1, order_id, holder)
                        return numbered
            raise ConcurrencyConflict(f"order {order_id} could not be numbered in {MAX_ROUNDS} rounds")

    async def _counter(self) -> Counter:
        found = await self.counters.find_one({"_id": COUNTER})
        if found is None:
            first = Counter(domain.FIRST_NUMBER - 1)
            with contextlib.suppress(DuplicateKeyError):  # another replica made it first
                await self.counters.insert_one(first.stored())
            found = await self.counters.find_one({"_id": COUNTER})
            if found is None:
                return first
        return Counter(int(found["last"]), found.get("holder"), found.get("previous"))

    async def _settle(self, counter: Counter) -> bool:
        """Make sure the holder of the counter's last number holds it. False when it holds another
        number (the claim was void): the counter is set back to the number before."""
        last, holder = counter.last, str(counter.holder)
        if self._settled == (last, holder):
            return True
        held = await self._write(holder, last)
        if held is not None and held.number == last:
            return True
        log.warning("order %s holds #%s, not #%s: the claim is void", holder, held and held.number, last)
        await self.counters.update_one(
            {"_id": COUNTER, "last": {"$eq": last}, "holder": {"$eq": holder}},
            {"$set": {"last": last - 1, "holder": counter.previous, "previous": None}},
        )
        return False

    async def _write(
        self, order_id: str, value: int, order: Order | None = None, stored: Stored[Order] | None = None
    ) -> Order | None:
        """Write `value` onto the order unless it holds a number: the order as it is after. Every
        term the order is found by (its number's too, search.Terms) is written before the order
        holds the number, which is when it is announced. `order`: as last read; `stored`: as
        stored, when the caller holds it (then the write needs no read)."""
        if self.terms is not None:
            order = order or await self.orders.get(order_id)
            if order is None or order.number is not None:
                return order
            await self.terms.add(order_id, order.created_at, search.terms_of(replace(order, number=value)))

        def rule(current: Order | None) -> Change[Order] | None:
            return None if current is None else domain.number(current, value, now_iso())

        if stored is not None:
            saved = await self.orders.apply_to(stored, rule)
        else:
            saved = await self.orders.apply(order_id, rule, missing="skip")
        return saved or await self.orders.get(order_id)

    async def sweep(self) -> int:
        """Number the orders whose numbering did not finish (oldest first); how many."""
        cutoff = f"{store.LIST_KEY_PREFIX}{iso(now() - SWEEP_AFTER)}"
        waiting = await self.orders.find(
            {"number_pending": {"$eq": True}, store.LIST_KEYS["created_at"]: {"$lt": cutoff}},
            sort=[(store.LIST_KEYS["created_at"], 1)],
            limit=SWEEP_BATCH,
        )
        for order in waiting:
            await self.number(order.id)
        return len(waiting)

    async def run(self) -> None:
        """The sweep, for as long as the service runs."""
        while True:
            try:
                if numbered := await self.sweep():
                    log.info("numbered %d orders whose numbering had not finished", numbered)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("numbering sweep failed; trying again")
            await asyncio.sleep(SWEEP_SECONDS)
