"""The FastAPI application: POST /webhook, GET /healthz, GET /metrics, GET /runs/{id} (the run page)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Route

from bot import handlers, pages
from bot.services import Services
from bot.webhooks import WebhookError, parse, read_capped, verify
from bot.worker import Worker

logger = logging.getLogger(__name__)


def create_app(s: Services, worker: Worker, secret: bytes, max_body: int) -> FastAPI:
    """The app; its lifespan starts the worker (after resolving runs a dead process left) and stops it."""
    started = time.time()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        recovered = await worker.start()
        if recovered:
            logger.warning("resolved %d run(s) left running by a stopped server", len(recovered))
        yield
        await worker.stop()

    async def webhook(request: Request) -> Response:
        """Signature, parse, decide, answer: milliseconds, never the agent."""
        headers = request.headers
        delivery_id = headers.get("x-github-delivery")
        try:
            body = await read_capped(request.stream(), headers.get("content-length"), max_body)
            verify(secret, body, headers.get("x-hub-signature-256"))
            delivery = parse(body, delivery_id, headers.get("x-github-event"))
            status, reason = await handlers.accept(s, delivery)
        except ClientDisconnect:
            s.count("deliveries.disconnected")
            logger.info("delivery %s: the sender hung up", delivery_id, extra={"delivery_id": delivery_id})
            return _json({"error": "client disconnected"}, 400)
        except WebhookError as e:
            s.count(f"deliveries.{e.status}")
            logger.info("delivery %s refused (%d): %s", delivery_id, e.status, e, extra={"delivery_id": delivery_id})
            return _json({"error": str(e)}, e.status)
        except Exception:
            s.count_error("webhook")
            logger.exception("delivery %s failed", delivery_id, extra={"delivery_id": delivery_id})
            return _json({"error": "internal error"}, 500)
        s.count(f"deliveries.{status}")
        return _json({"status": reason}, status)

    # A plain Starlette route: the body must stay raw bytes until the signature is checked, so FastAPI's
    # parameter parsing has nothing to do here.
    routes: list[BaseRoute] = [Route("/webhook", webhook, methods=["POST"])]
    app = FastAPI(title="ml-intern", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan, routes=routes)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            ok = await s.store.ping()
        except Exception as e:
            logger.warning("health check: store unreachable: %s", type(e).__name__)
            ok = False
        return JSONResponse({"ok": ok, "store": "reachable" if ok else "unreachable"}, 200 if ok else 503)

    @app.get("/runs/{run_id}", response_model=None)
    async def run_page(run_id: int, token: str | None = None) -> Response:
        """The run's trace as HTML, for the holder of the link in its progress comment; anyone else gets a 404
        that says nothing of the run (not even whether it exists)."""
        run = await s.store.get_run(run_id) if await pages.token_ok(s, run_id, token) else None
        if run is None:
            return _json({"error": "not found"}, 404)
        html = await asyncio.to_thread(pages.page, s.data_dir, run)
        return HTMLResponse(html, headers=pages.HEADERS)

    @app.get("/metrics")
    async def metrics() -> JSONResponse:
        stats = await s.store.stats()
        return JSONResponse(
            {
                "app": s.me.slug,
                "worker": s.store.worker,
                "uptime_s": round(time.time() - started, 1),
                "runs": stats["runs"],
                "queued_runs": stats["runs"].get("queued", 0),
                "active_runs": sum(stats["runs"].get(k, 0) for k in ("running", "waiting_approval")),
                "active_runs_here": worker.active,
                "deliveries": stats["deliveries"],
                "inbox_pending": stats["inbox_pending"],
                "counters": dict(sorted(s.counters.items())),
            }
        )

    return app


def _json(content: dict[str, str], status: int) -> Response:
    return Response(json.dumps(content).encode(), status, media_type="application/json")


__all__ = ["create_app"]
