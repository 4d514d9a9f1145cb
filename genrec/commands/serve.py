"""`genrec serve`: an HTTP API over a saved model (genrec or baseline), with dynamic batching."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DataError
from ..evaluate import EvalOptions


@dataclass
class ServeConfig:
    model: str = ""                # a genrec model folder or a saved baseline folder
    data: str | None = None        # the dataset folder (baselines: their item ids and titles)
    host: str = "127.0.0.1"        # address to listen on
    port: int = 8000
    max_batch: int = 64            # histories gathered into one model call at most
    max_wait_ms: float = 5.0       # how long the first request of a batch waits for others
    max_histories: int = 256       # histories in one request at most (the batch form)
    max_body_bytes: int = 1_000_000  # larger request bodies get 413
    beams: int = EvalOptions.beams  # genrec: beam width of the constrained search (at least k)

    def __post_init__(self):
        if min(self.beams, self.max_batch, self.max_histories) < 1 or self.max_wait_ms < 0:
            raise DataError("serve: beams, max_batch and max_histories must be at least 1, max_wait_ms >= 0")
        if not 0 < self.port < 65536:
            raise DataError(f"serve: port {self.port} is not in 1..65535")


def serve(cfg: ServeConfig) -> int:
    import uvicorn

    from ..serve import ServedModel, create_app

    served = ServedModel(cfg.model, cfg.data, beams=cfg.beams)  # a broken folder fails here, before listening
    app = create_app(served, cfg.max_batch, cfg.max_wait_ms, cfg.max_histories, cfg.max_body_bytes)
    print(f"serving {served.info['kind']} {cfg.model} ({len(served.catalogue):,} items) on "
          f"http://{cfg.host}:{cfg.port} (docs at /docs)", flush=True)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", timeout_graceful_shutdown=30)
    return 0
