"""The HTTP service of a bundle (``recxplore serve BUNDLE``), a FastAPI app run by uvicorn.

``POST /recommend`` takes one history (``history``) or many (``histories``) of raw item ids;
``GET /items/{id}`` describes an item; ``GET /health`` says the service is up and what it
serves; ``/docs`` is the OpenAPI page. With a token in ``$RECXPLORE_SERVE_TOKEN`` the first two
need ``Authorization: Bearer <token>``. A client's mistake (malformed JSON, a wrong type, an
unknown id, a request past the limits) gets a 4xx naming the field; the service keeps running.
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Optional, Union

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from recxplore.serve.bundle import Bundle
from recxplore.serve.recommend import Limits, RequestError, recommend

TOKEN_VARIABLE = "RECXPLORE_SERVE_TOKEN"
MAX_BODY_BYTES = 8 << 20

ItemId = Union[str, int]


class RecommendRequest(BaseModel):
    history: Optional[list[ItemId]] = Field(None, description="one history, oldest first")
    histories: Optional[list[list[ItemId]]] = Field(None, description="many histories")
    k: int = Field(10, description="items per history")
    exclude_history: bool = Field(True, description="never recommend a history's own items")
    skip_unknown: bool = Field(False, description="leave unknown ids out (listed back)")


def create_app(bundle: Bundle, limits: Limits = Limits(), token: Optional[str] = None) -> Any:
    """The app; ``token`` (default: ``$RECXPLORE_SERVE_TOKEN``, none if unset) guards the
    recommendation and item routes."""
    token = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None

    app = FastAPI(
        title="recxplore",
        description=f"Recommendations from the bundle of run {bundle.manifest['run']}",
        version=str(bundle.manifest["format"]),
    )

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse(
                {"detail": f"body: at most {MAX_BODY_BYTES} bytes"}, status_code=413
            )
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> Any:
        return JSONResponse({"detail": str(err), "field": err.field}, status_code=422)

    def authorised(authorization: Optional[str] = Header(None)) -> None:
        if token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                401,
                "authorization: send 'Authorization: Bearer <token>' with the service's token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/health")
    def health() -> dict[str, Any]:
        m = bundle.manifest
        return {
            "status": "ok",
            "run": m["run"],
            "items": len(bundle.items),
            "added_items": m.get("added_items", 0),
            "backbone": m["backbone"],
            "fusion": m["fusion"],
            "auth": token is not None,
        }

    @app.get("/items/{item_id}", dependencies=[Depends(authorised)])
    def item(item_id: str) -> dict[str, Any]:
        index = bundle.index.get(item_id)
        if index is None:
            raise HTTPException(404, f"item_id: {item_id!r} is not in this bundle")
        return bundle.items[index - 1]

    @app.post("/recommend", dependencies=[Depends(authorised)])
    def recommend_route(body: RecommendRequest) -> dict[str, Any]:
        if (body.history is None) == (body.histories is None):
            raise RequestError("history", "send exactly one of history and histories")
        many = body.histories if body.histories is not None else [body.history or []]
        results = recommend(
            bundle,
            [[str(i) for i in h] for h in many],
            k=body.k,
            exclude_history=body.exclude_history,
            skip_unknown=body.skip_unknown,
            limits=limits,
        )
        return {"results": results} if body.histories is not None else results[0]

    return app


def serve(
    bundle: Bundle, host: str, port: int, limits: Limits = Limits(), threads: int = 1
) -> None:
    import torch
    import uvicorn

    torch.set_num_threads(threads)
    uvicorn.run(create_app(bundle, limits), host=host, port=port, log_level="warning")
