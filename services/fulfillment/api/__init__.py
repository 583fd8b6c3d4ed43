"""The fulfillment service's HTTP routes, by resource: fulfillment orders and their fulfillments
(`fulfillment_orders`), bulk jobs (`bulk_jobs`), what routing sees and the shop settings
(`settings`), the fulfillment services' answers (`service_answers`), the pack run (`pack_runs`),
pick lists and packing slips (`pick_lists`); `bodies` the fulfillment orders' request bodies;
`common` holds what they share (permissions, errors, views)."""

from __future__ import annotations

from fastapi import APIRouter

from services.fulfillment.application import Fulfillment
from services.fulfillment.bulk import BulkJobs
from services.fulfillment.packer import Packer

from .bodies import CancellationRequestIn, FulfillmentIn, HoldIn, SubmitIn, TrackingUpdateIn
from .bulk_jobs import BulkJobIn, build_bulk_router
from .fulfillment_orders import build_router
from .pack_runs import build_pack_run_router
from .pick_lists import build_pick_list_router
from .service_answers import build_service_router
from .settings import SettingsIn, build_settings_router

__all__ = [
    "BulkJobIn", "CancellationRequestIn", "FulfillmentIn", "HoldIn", "SettingsIn", "SubmitIn", "TrackingUpdateIn",
    "routers",
]  # fmt: skip


def routers(fulfillment: Fulfillment, bulk_jobs: BulkJobs, packer: Packer) -> list[APIRouter]:
    return [
        build_router(fulfillment),
        build_service_router(fulfillment),
        build_settings_router(fulfillment),
        build_bulk_router(bulk_jobs),
        build_pack_run_router(packer),
        build_pick_list_router(fulfillment),
    ]
