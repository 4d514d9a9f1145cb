import numpy as np
import pandas as pd
import pytest
import torch

from genrec.data import DataError, RecDataset
from genrec.data.text import make_item
from semid.text import EncoderConfig, MeanPoolEncoder, TextTemplate, embed_texts
from tests.tiny_lm import save_tiny_lm


def _dataset(items):
    inter = pd.DataFrame({"user_id": ["u"] * len(items), "item_id": [i["item_id"] for i in items]})
    return RecDataset.from_records(items, inter, "t")


def test_template_renders_fields_in_order_and_skips_empty():
    item = make_item("x", title="Tent", description="Light.", categories=["Outdoors", "Camping"], brand=None)
    assert TextTemplate().render(item) == "Title: Tent; Categories: Outdoors, Camping; Description: Light."
    assert TextTemplate(fields=("brand", "title")).render(item) == "Title: Tent"


def test_items_without_text_placeholder_or_error(caplog):
    ds = _dataset([make_item("a", title="Tent"), make_item("b")])
    assert TextTemplate().texts(ds) == ["Title: Tent", "Item b"]
    assert "1 of 2 items have no text; their id stands in" in caplog.text
    with pytest.raises(DataError, match=r"1 items have no text .*\(first: item 'b'\)"):
        TextTemplate(missing="error").texts(ds)


class _CountingEncoder:
    calls = 0

    def encode(self, texts):
        type(self).calls += 1
        return np.arange(len(texts) * 3, dtype=np.float32).reshape(len(texts), 3)


def test_cache_hits_on_same_texts_and_misses_on_changed_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(EncoderConfig, "build", lambda self: _CountingEncoder())
    enc = EncoderConfig("fake")
    first = embed_texts(["a", "b"], enc, tmp_path)
    again = embed_texts(["a", "b"], enc, tmp_path)
    assert _CountingEncoder.calls == 1 and np.array_equal(first, again)
    embed_texts(["a", "c"], enc, tmp_path)
    embed_texts(["a", "b"], EncoderConfig("other"), tmp_path)
    assert _CountingEncoder.calls == 3


def test_nan_embeddings_are_refused(tmp_path, monkeypatch):
    class Bad:
        def encode(self, texts):
            return np.array([[0.0, np.nan]] * len(texts), dtype=np.float32)

    monkeypatch.setattr(EncoderConfig, "build", lambda self: Bad())
    with pytest.raises(DataError, match="NaN or inf"):
        embed_texts(["a"], EncoderConfig("bad"), tmp_path)
    assert not list(tmp_path.iterdir())  # nothing cached


def test_minilm_offline_puts_similar_texts_close():
    vectors = EncoderConfig().build().encode(["camping tent for two", "two-person tent for camping", "red nail polish"])
    sims = vectors @ vectors.T / np.outer(np.linalg.norm(vectors, axis=1), np.linalg.norm(vectors, axis=1))
    assert vectors.shape == (3, 384) and sims[0, 1] > sims[0, 2] + 0.2


def test_mean_pool_ignores_padding(tmp_path):
    from transformers import AutoModel

    save_tiny_lm(tmp_path, ["a", "b", "c", "d"], layers=2)
    encoder = MeanPoolEncoder(str(tmp_path), batch_size=8)
    batch = encoder.encode(["a b c d", "b"])
    alone = encoder.encode(["b"])
    with torch.no_grad():
        reference = AutoModel.from_pretrained(tmp_path)(input_ids=torch.tensor([[3, 4, 5, 6]])).last_hidden_state
    np.testing.assert_allclose(batch[1], alone[0], atol=1e-5)
    np.testing.assert_allclose(batch[0], reference.mean(1)[0].numpy(), atol=1e-5)
