"""`genrec serve` under load: requests/s and latency percentiles with and without dynamic batching.

    python bench/serve.py [--model runs/quickstart/model] [--clients 64] [--requests 512] [--million]
                          [--json bench/results/serve.json]

For each `--max-batch` (1 and 64) it starts `genrec serve` on loopback, measures one lone client's latency
(sequential requests), then drives it with `--clients` concurrent clients until `--requests` answers came back
(or `--seconds` passed), and checks every answer against the model's own recommendation for that history
(items equal, scores within 1e-3). `--million` does the same with a 1,000,000-item catalogue: random unique
3-level codes (128 x 128 x 64) and a random model of the demo's size (2 layers, width 128).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from genrec.model import BackboneConfig, GenRecModel, ScratchConfig
from genrec.serve import ServedModel
from semid.tokenizer import SemanticIdTokenizer

K = 10


def million_item_model(folder: Path) -> Path:
    """A random model of the demo's size over 1,000,000 items with random unique codes."""
    levels = [128, 128, 64]
    flat = np.random.default_rng(0).choice(int(np.prod(levels)), size=1_000_000, replace=False)
    codes = np.stack(np.unravel_index(flat, levels), axis=1).astype(np.int64)
    ids = [f"i{n:07d}" for n in range(len(codes))]
    semid = SemanticIdTokenizer(codes, ids, levels, None, {"source": "synthetic"})
    backbone = BackboneConfig(scratch=ScratchConfig(layers=2, hidden=128, heads=4, kv_heads=4, intermediate=384))
    genrec = GenRecModel.create(backbone, semid, ["which item comes next after these"])
    genrec.titles = {item: f"item {item}" for item in ids}
    genrec.save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model: Path, max_batch: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "genrec", "serve", "--model", str(model), "--port", str(port),
                                "--max-batch", str(max_batch), "--max-wait-ms", "5"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.time() > deadline:
            raise SystemExit(f"the server did not start: {process.stderr.read()[-2000:]}")
        time.sleep(0.2)


def load(url: str, pool: list[list[str]], clients: int, requests: int, seconds: float) -> tuple[list, list]:
    """(latencies in s, (history index, answer) pairs) from `clients` threads until `requests` answers."""
    latencies, answers, lock, counter = [], [], threading.Lock(), iter(range(requests))
    deadline = time.time() + seconds

    def client():
        with httpx.Client(timeout=120) as http:
            while time.time() < deadline:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                started = time.perf_counter()
                reply = http.post(f"{url}/recommend", json={"history": pool[n % len(pool)], "k": K})
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    answers.append((n % len(pool), reply.status_code, reply.json()))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, answers


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def compute_ms(served: ServedModel, pool_size: int = 64) -> dict[int, float]:
    """The model call alone, in-process: ms for a batch of 1, 8 and 64 histories (median of 3), the bound on
    what batching can give."""
    rng = np.random.default_rng(1)
    histories = [rng.choice(len(served.catalogue), size=10, replace=False) for _ in range(pool_size)]
    out = {}
    for n in (1, 8, 64):
        served.top_k(histories[:n], K, False)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            served.top_k(histories[:n], K, False)
            times.append(time.perf_counter() - started)
        out[n] = round(statistics.median(times) * 1000, 1)
    return out


def measure(model_dir: Path, args, label: str) -> list[dict]:
    served = ServedModel(model_dir)
    model, ids = served.model, served.model.semid.item_ids
    rng = np.random.default_rng(0)
    pool = [[ids[i] for i in rng.choice(len(ids), size=int(rng.integers(3, 21)), replace=False)] for _ in range(64)]
    index = {item: i for i, item in enumerate(ids)}
    prompts = [model.history_prompt(np.array([index[i] for i in h])) for h in pool]
    expected = [model.recommend_prompts([p], K, beams=20) for p in prompts]  # the direct call, one history at a time
    rows, compute = [], compute_ms(served)
    print(f"{label}: the model call alone takes {compute} ms for 1 / 8 / 64 histories", flush=True)
    for max_batch in (1, 64):
        process, url = start(model_dir, max_batch)
        try:
            lone, _ = load(url, pool, 1, 20, args.seconds)
            started = time.perf_counter()
            latencies, answers = load(url, pool, args.clients, args.requests, args.seconds)
            wall = time.perf_counter() - started
        finally:
            process.terminate()
            process.wait()
        wrong = 0
        for n, status, answer in answers:
            items, scores = expected[n]
            got = [i["item_id"] for i in answer.get("items", [])]
            ok = status == 200 and got == [ids[i] for i in items[0]] and np.allclose(
                [i["score"] for i in answer["items"]], scores[0], atol=1e-3)
            wrong += not ok
        rows.append({"catalogue": label, "items": len(ids), "max_batch": max_batch, "clients": args.clients,
                     "requests": len(answers), "lost": args.requests - len(answers), "wrong": wrong,
                     "requests_per_s": round(len(answers) / wall, 1),
                     "p50_ms": round(percentile(latencies, 50), 1), "p95_ms": round(percentile(latencies, 95), 1),
                     "p99_ms": round(percentile(latencies, 99), 1),
                     "lone_p50_ms": round(statistics.median(lone) * 1000, 1), "model_call_ms": compute})
        print(rows[-1], flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| catalogue | max batch | clients | requests/s | p50 (ms) | p95 (ms) | p99 (ms) | lone request p50 (ms) "
             "| lost | wrong |", "|---" * 10 + "|"]
    lines += [f"| {r['items']:,} items | {r['max_batch']} | {r['clients']} | {r['requests_per_s']} | {r['p50_ms']} | "
              f"{r['p95_ms']} | {r['p99_ms']} | {r['lone_p50_ms']} | {r['lost']} | {r['wrong']} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/quickstart/model")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=300, help="stop a load phase after this long")
    parser.add_argument("--million", action="store_true", help="also a 1,000,000-item catalogue")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = measure(Path(args.model), args, "model")
    if args.million:
        with tempfile.TemporaryDirectory() as tmp:
            rows += measure(million_item_model(Path(tmp) / "million"), args, "1M synthetic")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
