"""`genrec serve`: recommendations over HTTP, with concurrent requests gathered into batched model calls.

FastAPI on uvicorn: typed request models with field-level validation messages, OpenAPI docs at `/docs`, and an
ASGI server that finishes in-flight requests on SIGTERM. The model runs on one worker thread; a batcher
gathers requests for up to `max_wait_ms` (or until `max_batch` histories wait) and answers each group of
equal `k` and `exclude_history` with one batched call, so every answer equals the model's own
`recommend` for that history.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import Request  # at module level: route annotations are resolved from here
from pydantic import BaseModel, Field, model_validator

from .errors import DataError
from .evaluate import EvalOptions

log = logging.getLogger("genrec.serve")


class RecommendRequest(BaseModel):
    history: list[str | int] | None = Field(None, description="original item ids, oldest first")
    histories: list[list[str | int]] | None = Field(None, description="the batch form: several histories")
    k: int = Field(10, description="items per history")
    exclude_history: bool = Field(False, description="never recommend an item of the history")

    @model_validator(mode="after")
    def one_form(self):
        if (self.history is None) == (self.histories is None):
            raise ValueError("give exactly one of `history` or `histories`")
        return self


class Item(BaseModel):
    item_id: str
    title: str | None
    score: float


class Recommendations(BaseModel):
    items: list[Item]


class BatchRecommendations(BaseModel):
    results: list[Recommendations]


@dataclass
class Catalogue:
    """Original item ids and display titles, in the model's item order."""

    item_ids: list[str]
    titles: list[str | None]

    def __post_init__(self):
        self.index = {item_id: i for i, item_id in enumerate(self.item_ids)}

    def __len__(self) -> int:
        return len(self.item_ids)


class ServedModel:
    """A genrec model or a saved baseline behind one call: top-k (items, scores) for item-index histories."""

    def __init__(self, path: str | Path, data: str | Path | None = None, beams: int = EvalOptions.beams):
        path = Path(path)
        if (path / "baseline.json").is_file():
            from baselines.methods import load

            from .data import RecDataset

            if data is None:
                raise DataError(f"{path} is a baseline, which keeps no item ids: pass --data (the dataset folder "
                                "it was trained on)")
            self.model, dataset = load(path), RecDataset.load(data)
            if dataset.num_items != self.model.model.num_items:
                raise DataError(f"{path} scores {self.model.model.num_items} items, {data} has {dataset.num_items}")
            self.catalogue = Catalogue(list(dataset.items["item_id"]), list(dataset.titles()))
            self.info = {"kind": "baseline", "method": self.model.method}
        else:
            from .model import GenRecModel

            self.model = GenRecModel.from_pretrained(path)
            self.model.decode_options = {"beams": beams}
            ids = self.model.semid.item_ids
            self.catalogue = Catalogue(ids, [self.model.titles.get(i) for i in ids])
            backbone = self.model.backbone.name or f"scratch ({self.model.backbone.scratch.arch})"
            self.info = {"kind": "genrec", "backbone": backbone, "peft": self.model.is_peft,
                         "codebook": {"levels": self.model.semid.level_sizes}}
        self.info = {"model": str(path), **self.info, "items": len(self.catalogue)}

    def top_k(self, histories: list[np.ndarray], k: int, exclude_history: bool) -> tuple[np.ndarray, np.ndarray]:
        if self.info["kind"] == "baseline":
            return self.model.recommend_scored(histories, k, exclude_history)
        # the gathered batch is one decode
        return self.model.recommend_scored(histories, k, exclude_history, batch_size=len(histories))


class Batcher:
    """Gathers concurrent requests into batched `top_k` calls on one worker thread."""

    def __init__(self, served: ServedModel, max_batch: int, max_wait_ms: float):
        self.served, self.max_batch, self.max_wait = served, max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genrec-model")
        self.batches: deque[int] = deque(maxlen=10_000)  # histories per recent model call (bench, tests)

    async def submit(self, histories: list[np.ndarray], k: int, exclude_history: bool):
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((histories, k, exclude_history, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self.queue.get()]
            size, deadline = len(pending[0][0]), loop.time() + self.max_wait
            while size < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    pending.append(await asyncio.wait_for(self.queue.get(), left))
                except TimeoutError:
                    break
                size += len(pending[-1][0])
            groups = defaultdict(list)
            for request in pending:
                groups[request[1], request[2]].append(request)
            for (k, exclude), requests in groups.items():
                await self._answer(loop, requests, k, exclude)

    async def _answer(self, loop, requests: list, k: int, exclude: bool) -> None:
        histories = [h for request in requests for h in request[0]]
        self.batches.append(len(histories))
        try:
            items, scores = await loop.run_in_executor(self.pool, self.served.top_k, histories, k, exclude)
        except Exception as err:  # the server keeps serving; this batch's requests get the error
            log.exception("a batch of %d histories failed", len(histories))
            for request in requests:
                if not request[3].done():
                    request[3].set_exception(err)
            return
        start = 0
        for request in requests:
            count = len(request[0])
            if not request[3].done():
                request[3].set_result((items[start : start + count], scores[start : start + count]))
            start += count


def create_app(served: ServedModel, max_batch: int = 64, max_wait_ms: float = 5.0, max_histories: int = 256,
               max_body_bytes: int = 1_000_000):
    """The FastAPI application serving `served`."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from . import __version__

    catalogue = served.catalogue

    @asynccontextmanager
    async def lifespan(app):
        batcher = app.state.batcher = Batcher(served, max_batch, max_wait_ms)
        worker = asyncio.create_task(batcher.run())
        yield
        worker.cancel()
        batcher.pool.shutdown(wait=True)

    app = FastAPI(title="genrec", version=__version__, lifespan=lifespan,
                  description="Top-k recommendations from a genrec model or a saved baseline.")

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"error": message})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = []
        for problem in exc.errors():
            if problem["type"] == "json_invalid":
                problems.append(f"body: not valid JSON ({problem['msg']} at character {problem['loc'][-1]})")
                continue
            where = ".".join(str(part) for part in problem["loc"] if part != "body") or "body"
            problems.append(f"{where}: {problem['msg']}")
        return error(422, "; ".join(problems))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):  # logged by the batcher; the server keeps serving
        return error(500, f"the model failed on this request ({type(exc).__name__}: {exc})")

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            return error(413, f"the request body is larger than {max_body_bytes} bytes")
        return await call_next(request)

    def to_indices(raw: list, where: str) -> np.ndarray:
        ids = [str(i) for i in raw]
        if not ids:
            raise DataError(f"{where}: the history is empty; give at least one item id")
        unknown = [i for i in ids if i not in catalogue.index]
        if unknown:
            raise DataError(f"{where}: unknown item id(s) {', '.join(unknown[:10])}")
        return np.array([catalogue.index[i] for i in ids], dtype=np.int64)

    def render(items: np.ndarray, scores: np.ndarray) -> dict:
        return {"items": [{"item_id": catalogue.item_ids[i], "title": catalogue.titles[i], "score": float(s)}
                          for i, s in zip(items, scores) if i >= 0]}

    @app.post("/recommend", response_model=Recommendations | BatchRecommendations)
    async def recommend(body: RecommendRequest, request: Request):
        """One history (`history`) or several (`histories`); each answered with its top `k` items."""
        if not 1 <= body.k <= len(catalogue):
            return error(422, f"k: must be between 1 and the catalogue size ({len(catalogue)}), not {body.k}")
        raw = [body.history] if body.history is not None else body.histories
        if not raw:
            return error(422, "histories: the list is empty")
        if len(raw) > max_histories:
            return error(413, f"histories: {len(raw)} histories, at most {max_histories} per request")
        try:
            field = "history" if body.history is not None else "histories"
            histories = [to_indices(h, field if body.history is not None else f"{field}[{n}]")
                         for n, h in enumerate(raw)]
        except DataError as err:
            return error(422, str(err))
        items, scores = await request.app.state.batcher.submit(histories, body.k, body.exclude_history)
        answers = [render(i, s) for i, s in zip(items, scores)]
        return answers[0] if body.history is not None else {"results": answers}

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/info")
    async def info():
        return {**served.info, "genrec_version": __version__, "max_batch": max_batch, "max_wait_ms": max_wait_ms}

    return app
