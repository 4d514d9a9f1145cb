import json

import numpy as np
import pytest
import torch

from genrec.data import DataError
from semid.rqkmeans import ResidualKMeans
from semid.tokenizer import SemanticIdTokenizer


def _fitted(seed=0, n=400, dim=16, levels=(8, 8, 8)):
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    quantizer = ResidualKMeans(dim=dim, levels=levels)
    quantizer.fit(x, seed=seed)
    from semid.collisions import make_unique
    from semid.residual import residual_assign

    codes, dist = residual_assign(quantizer.latent(torch.from_numpy(x)), quantizer.codebooks())
    codes = make_unique(codes.numpy(), dist.numpy())
    config = {"quantizer": {"kind": "rqkmeans", "levels": list(levels)}, "embedding_dim": dim}
    sizes = list(levels) + ([int(codes[:, -1].max()) + 1] if codes.shape[1] > len(levels) else [])
    return SemanticIdTokenizer(codes, [f"i{k}" for k in range(n)], sizes, quantizer, config), x


def test_tokens_round_trip():
    tok = SemanticIdTokenizer(np.array([[12, 3, 200], [1, 2, 3]]), ["x", "y"], [256, 256, 256])
    assert tok.item_to_tokens(0) == "<a_12><b_3><c_200>"
    assert tok.tokens_to_item("<a_12><b_3><c_200>") == 0
    assert tok.tokens_to_item("<a_1><b_2><c_4>") is None  # not an item
    assert tok.tokens_to_item("<a_1><b_2>") is None and tok.tokens_to_item("<b_1><a_2><c_3>") is None
    assert tok.codes_to_item((1, 2, 3)) == 1
    assert tok.level_tokens(1)[:2] == ["<b_0>", "<b_1>"] and len(tok.all_tokens()) == 768


def test_duplicates_and_out_of_range_are_rejected():
    with pytest.raises(DataError, match="share a code tuple"):
        SemanticIdTokenizer(np.array([[1, 2], [1, 2]]), ["x", "y"], [4, 4])
    with pytest.raises(DataError, match="outside"):
        SemanticIdTokenizer(np.array([[1, 4]]), ["x"], [4, 4])


def test_save_load_round_trip(tmp_path):
    tok, x = _fitted()
    tok.save_pretrained(tmp_path)
    back = SemanticIdTokenizer.from_pretrained(tmp_path)
    assert (back.codes == tok.codes).all() and back.item_ids == tok.item_ids and back.level_sizes == tok.level_sizes
    z = torch.from_numpy(x[:5])
    assert torch.equal(back.quantizer.latent(z), tok.quantizer.latent(z))
    assert json.loads((tmp_path / "codes.json").read_text())["i0"] == tok.item_to_tokens(0)


def test_corrupt_folders_fail_clearly(tmp_path):
    tok, _ = _fitted()
    tok.save_pretrained(tmp_path / "a")
    with pytest.raises(DataError, match="missing config.json"):
        SemanticIdTokenizer.from_pretrained(tmp_path / "nothing")
    (tmp_path / "a" / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(DataError, match="corrupt"):
        SemanticIdTokenizer.from_pretrained(tmp_path / "a")
    tok.save_pretrained(tmp_path / "b")
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    (tmp_path / "b" / "config.json").write_text(json.dumps({**config, "genrec_semid_version": 99}))
    with pytest.raises(DataError, match="version 99"):
        SemanticIdTokenizer.from_pretrained(tmp_path / "b")
    tok.save_pretrained(tmp_path / "c")
    table = json.loads((tmp_path / "c" / "codes.json").read_text())
    table["i0"], table["i1"] = table["i1"], table["i0"]
    (tmp_path / "c" / "codes.json").write_text(json.dumps(table))
    with pytest.raises(DataError, match="does not match"):
        SemanticIdTokenizer.from_pretrained(tmp_path / "c")


def test_cold_start_items_get_unique_codes_near_their_text():
    tok, x = _fitted()
    before = {tuple(c) for c in tok.codes.tolist()}
    # new items: exact copies of existing ones (their codes are taken) and fresh vectors
    fresh = np.random.default_rng(9).normal(size=(30, x.shape[1])).astype(np.float32)
    new = tok.add_items([f"new{k}" for k in range(40)], np.concatenate([x[:10], fresh]))
    assert new == list(range(400, 440))
    codes = [tuple(c) for c in tok.codes.tolist()]
    assert len(set(codes)) == 440 and {tuple(c) for c in tok.codes[:400].tolist()} == before
    for k in range(10):  # a copy of item k keeps item k's prefix, moves only its last code
        assert codes[400 + k][:2] == codes[k][:2]
    assert tok.tokens_to_item(tok.item_to_tokens(425)) == 425 and tok.item_ids[425] == "new25"
    with pytest.raises(DataError, match="already coded"):
        tok.add_items(["i3"], x[:1])
