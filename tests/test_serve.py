"""`genrec serve`: a real server process over loopback, and the app in-process for baselines and batching."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from genrec.cli import main
from genrec.data import RecDataset, SyntheticConfig, make_synthetic
from genrec.model import GenRecModel
from genrec.serve import ServedModel, create_app

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.synthetic.users=120", "baselines=[popularity]", "codebook.quantizer=rqkmeans", "codebook.levels=[16,8,8]",
        "finetune.max_steps=4", "finetune.eval_steps=2", "finetune.eval_users=20", "finetune.batch_size=16",
        "finetune.backbone.scratch={layers: 1, hidden: 32, heads: 2, kv_heads: 2, intermediate: 64}"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve") / "run"
    assert main(["run", str(ROOT / "recipes" / "quickstart-lcrec.yaml"), f"run_dir={folder}", *TINY]) == 0
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(run):
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "genrec", "serve", "--model", str(run / "model"), "--port",
                                str(port), "--max-wait-ms", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.time() < deadline, process.stderr.read()[-3000:]
        time.sleep(0.2)
    yield url, process
    if process.poll() is None:
        process.kill()
        process.wait()


def _direct(model: GenRecModel, history: list[str], k: int, exclude: bool = False):
    index = {item: i for i, item in enumerate(model.semid.item_ids)}
    h = np.array([index[i] for i in history])
    items, scores = model.recommend_prompts([model.history_prompt(h)], k, beams=20, exclude=[h] if exclude else None)
    return [model.semid.item_ids[i] for i in items[0]], scores[0]


def test_concurrent_answers_equal_the_direct_call(run, server):
    url, _ = server
    model = GenRecModel.from_pretrained(run / "model")
    ids = model.semid.item_ids
    histories = [[ids[(7 * n + j) % len(ids)] for j in range(1 + n % 4)] for n in range(16)]
    answers = [None] * len(histories)

    def ask(n):
        answers[n] = httpx.post(f"{url}/recommend", json={"history": histories[n], "k": 5}, timeout=60).json()

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(histories))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for history, answer in zip(histories, answers):
        items, scores = _direct(model, history, 5)
        assert [i["item_id"] for i in answer["items"]] == items
        np.testing.assert_allclose([i["score"] for i in answer["items"]], scores, atol=1e-4)
        assert all(i["title"] == model.titles[i["item_id"]] for i in answer["items"])
    batch = httpx.post(f"{url}/recommend", json={"histories": histories[:3], "k": 4, "exclude_history": True}).json()
    for history, answer in zip(histories[:3], batch["results"]):
        got = [i["item_id"] for i in answer["items"]]
        assert got == _direct(model, history, 4, exclude=True)[0] and not set(got) & set(history)


def test_bad_requests_get_a_4xx_naming_the_field(run, server):
    url, _ = server
    known = GenRecModel.from_pretrained(run / "model").semid.item_ids[0]
    items = len(json.loads((run / "model" / "titles.json").read_text()))
    cases = [
        (b"{not json", 422, "body: not valid JSON"),
        ({"history": "abc"}, 422, "history: Input should be a valid list"),
        ({"history": [known], "k": "ten"}, 422, "k: Input should be a valid integer"),
        ({"history": [known, "nope", "zip"]}, 422, "unknown item id(s) nope, zip"),
        ({"history": []}, 422, "the history is empty"),
        ({"history": [known], "k": 0}, 422, "k: must be between 1 and the catalogue size"),
        ({"history": [known], "k": items + 1}, 422, "k: must be between 1 and the catalogue size"),
        ({"k": 3}, 422, "exactly one of `history` or `histories`"),
        ({"histories": [[known]] * 300}, 413, "at most 256 per request"),
        ({"histories": [[known], []]}, 422, "histories[1]: the history is empty"),
        ({"history": ["x" * 2_000_000]}, 413, "larger than 1000000 bytes"),
    ]
    for body, status, message in cases:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = httpx.post(f"{url}/recommend", content=content, headers={"content-type": "application/json"})
        assert reply.status_code == status and message in reply.json()["error"], (body, reply.text)
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}  # still serving
    info = httpx.get(f"{url}/info").json()
    assert info["kind"] == "genrec" and info["items"] == items and info["codebook"]["levels"][:3] == [16, 8, 8]
    assert httpx.get(f"{url}/docs").status_code == 200 and "/recommend" in httpx.get(f"{url}/openapi.json").text


def test_sigterm_finishes_the_request_in_flight(run, server):
    url, process = server
    known = GenRecModel.from_pretrained(run / "model").semid.item_ids[:2]
    result = {}

    def ask():
        result["reply"] = httpx.post(f"{url}/recommend", json={"histories": [known] * 200, "k": 20}, timeout=120)

    thread = threading.Thread(target=ask)
    thread.start()
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    thread.join()
    assert result["reply"].status_code == 200 and len(result["reply"].json()["results"]) == 200
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done


def test_a_model_folder_that_does_not_load_fails_at_start(tmp_path, capsys):
    (tmp_path / "genrec.json").write_text("{}")
    assert main(["serve", "--model", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path / "nothing")]) == 2


def test_a_baseline_is_served_and_requests_are_batched(tmp_path):
    from fastapi.testclient import TestClient

    make_synthetic(SyntheticConfig(users=80)).save(tmp_path / "data")
    assert main(["baseline", "train", "--method", "sasrec", "--data", str(tmp_path / "data"), "--out",
                 str(tmp_path / "sasrec"), "model.epochs=1", "model.hidden=16", "model.layers=1"]) == 0
    with pytest.raises(Exception, match="pass --data"):
        ServedModel(tmp_path / "sasrec")
    served = ServedModel(tmp_path / "sasrec", tmp_path / "data")
    dataset = RecDataset.load(tmp_path / "data")
    ids = list(dataset.items["item_id"])
    with TestClient(create_app(served, max_batch=64, max_wait_ms=300)) as client:
        replies = [None] * 8

        def ask(n):
            replies[n] = client.post("/recommend", json={"history": ids[n : n + 3], "k": 5}).json()

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert max(client.app.state.batcher.batches) > 1  # concurrent requests shared a model call
        for n, reply in enumerate(replies):
            direct = served.model.recommend([np.arange(n, n + 3)], 5)[0]  # item i is the dataset's row i
            assert [i["item_id"] for i in reply["items"]] == [ids[i] for i in direct]
        assert client.get("/info").json()["method"] == "sasrec"
