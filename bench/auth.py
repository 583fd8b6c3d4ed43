"""What checking a bearer token adds to a request, measured in-process (no network, no store).

    python -m bench.auth [--requests 2000]

1. The verification alone (`Authenticator.principal`: header, key by kid from the cached JWKS,
   signature, claims), p50 and p99 per algorithm.
2. A whole request through the orders app (`GET /orders/not-an-id`, answered 404 by the route
   without touching the store) with the token verified, and the same request with the
   verification replaced by a stub that returns the caller: the difference is what the check
   adds to a request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from deploy.auth import LocalAuth, new_signing_key
from services.orders.app import OrdersSettings, build
from shared.auth import Authenticator, Principal, mint_token
from shared.settings import ServiceSettings


def _env(auth: LocalAuth) -> dict[str, str]:
    return {name.lower(): value for name, value in auth.env().items()}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99) - 1] * 1e6


async def verification(auth: LocalAuth, requests: int) -> None:
    keys = {algorithm: new_signing_key(algorithm) for algorithm in ("EdDSA", "ES256", "RS256")}
    kids = {algorithm: auth.trust(key) for algorithm, key in keys.items()}
    authenticator = Authenticator(ServiceSettings.model_validate(_env(auth)))
    print(f"1. verification alone ({requests} tokens each)")
    for algorithm, key in keys.items():
        kid = kids[algorithm]
        token = mint_token(key, kid, issuer=auth.issuer, audience=auth.audience, subject="bench",
                           scopes=["orders:read"], ttl_seconds=600)  # fmt: skip
        await authenticator.principal(token)  # the key set is fetched once, then cached
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            await authenticator.principal(token)
            samples.append(time.perf_counter() - started)
        p50, p99 = _percentiles(samples)
        print(f"   {algorithm:<6} p50 {p50:7.1f} µs   p99 {p99:7.1f} µs")


async def requests_through_the_app(auth: LocalAuth, requests: int) -> None:
    settings = OrdersSettings.model_validate(
        {**_env(auth), "mongodb_uri": "mongodb://127.0.0.1:9/?directConnection=true",
         "kafka_bootstrap_servers": "127.0.0.1:9"}
    )  # fmt: skip
    runtime, app = build(settings)
    headers = {"authorization": f"Bearer {auth.mint('bench', ['orders:read'], 600)}"}
    stubbed = Principal("bench", frozenset({"orders:read"}))
    verify = runtime.authenticator.principal

    async def stub(token: str) -> Principal:
        return stubbed

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://orders") as client:

        async def timed() -> list[float]:
            samples = []
            for _ in range(requests):
                started = time.perf_counter()
                reply = await client.get("/orders/not-an-id", headers=headers)
                samples.append(time.perf_counter() - started)
                assert reply.status_code == 404, reply.text
            return samples

        await timed()  # warm up
        rounds: dict[str, list[float]] = {"verified": [], "stubbed": []}
        for _ in range(3):  # interleaved, so that the machine's load falls on both alike
            runtime.authenticator.principal = verify  # type: ignore[method-assign]
            rounds["verified"] += await timed()
            runtime.authenticator.principal = stub  # type: ignore[method-assign]
            rounds["stubbed"] += await timed()
    verified, stubbed_ = _percentiles(rounds["verified"]), _percentiles(rounds["stubbed"])
    print(f"2. GET /orders/not-an-id in-process ({3 * requests} requests each, EdDSA token)")
    print(f"   token verified      p50 {verified[0]:7.1f} µs   p99 {verified[1]:7.1f} µs")
    print(f"   verification stub   p50 {stubbed_[0]:7.1f} µs   p99 {stubbed_[1]:7.1f} µs")
    print(f"   verification adds   p50 {verified[0] - stubbed_[0]:7.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as directory:
        auth = LocalAuth(Path(directory) / "auth").ensure()
        asyncio.run(verification(auth, args.requests))
        asyncio.run(requests_through_the_app(auth, args.requests))


if __name__ == "__main__":
    main()
