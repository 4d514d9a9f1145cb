import json

import numpy as np
import pytest
import torch

from genrec.data import DataError
from genrec.model import BackboneConfig, GenRecModel, LoraSettings, ScratchConfig, add_code_tokens, build_word_tokenizer
from genrec.sources import load_pretrained
from tests.tiny_lm import SPECIAL, save_tiny_lm

WORDS = [*SPECIAL, "the", "user", "bought", "next", "item", "which", ",", ".", "?"]


def _pretend_pretrained(folder, tied: bool, extra_rows: int = 0):
    """A small 'pretrained' LM saved like a hub model, optionally with a padded vocabulary (as Qwen has)."""
    return save_tiny_lm(folder, WORDS[len(SPECIAL):], tied=tied, extra_rows=extra_rows)


@pytest.mark.parametrize("tied", [True, False])
def test_code_tokens_resize_tied_and_untied(tmp_path, world, tied):
    model, tokenizer = load_pretrained(_pretend_pretrained(tmp_path, tied))
    ids = add_code_tokens(model, tokenizer, world["semid"])
    rows = model.get_input_embeddings().weight.shape[0]
    assert rows == len(WORDS) + len(world["semid"].all_tokens()) == len(tokenizer)
    assert model.get_output_embeddings().weight.shape[0] == rows and max(ids) == rows - 1
    assert (model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()) == tied
    assert tokenizer.convert_ids_to_tokens(ids[:2]) == ["<a_0>", "<a_1>"]


def test_the_word_tokenizer_gives_one_piece_per_word_and_none_per_space():
    tokenizer = build_word_tokenizer(["The user bought soap, then a brush."], ["<a_1>", "<b_2>"])
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("the user  bought <a_1><b_2>, then soap!")["input_ids"])
    assert pieces == ["the", "user", "bought", "<a_1>", "<b_2>", ",", "then", "soap", tokenizer.unk_token]
    assert tokenizer.decode(tokenizer("a brush")["input_ids"]) == "a brush"


def test_padded_vocabulary_is_never_shrunk(tmp_path, world):
    model, tokenizer = load_pretrained(_pretend_pretrained(tmp_path, tied=True, extra_rows=500))
    add_code_tokens(model, tokenizer, world["semid"])
    assert model.get_input_embeddings().weight.shape[0] == len(WORDS) + 500 > len(tokenizer)


@pytest.mark.parametrize("tied", [True, False])
def test_lora_trains_new_token_rows_and_freezes_old_ones(tmp_path, world, tied):
    backbone = BackboneConfig(name=_pretend_pretrained(tmp_path, tied), lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    genrec = GenRecModel.create(backbone, world["semid"])
    model, tokenizer = genrec.model, genrec.tokenizer
    code_ids = tokenizer.convert_tokens_to_ids(world["semid"].all_tokens())
    old_ids = list(range(len(WORDS)))
    text = "the user bought <a_1><b_2><c_3> , next item ?"
    batch = tokenizer([text], return_tensors="pt")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "trainable_tokens" in n for n in trainable)
    assert any("lm_head" in n for n in trainable) == (not tied)

    def rows(ids):
        emb = model.get_input_embeddings()(torch.tensor(ids)).detach().clone()
        head = model.get_output_embeddings()  # its effective rows: the head applied to the identity
        return emb, head(torch.eye(emb.shape[-1])).detach().T[ids].clone()

    before_new, before_old = rows(code_ids[:5]), rows(old_ids)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    optimizer.step()
    after_new, after_old = rows(code_ids[:5]), rows(old_ids)
    assert torch.equal(before_old[0], after_old[0])                 # old input rows frozen
    assert not torch.allclose(before_new[0][1:4], after_new[0][1:4])  # <a_1>, <a_2>... rows that were used moved
    if not tied:
        assert not torch.allclose(before_new[1], after_new[1])      # untied head: new rows trainable too


def test_scratch_save_load_gives_identical_logits(tmp_path, world):
    texts = list(world["sft"]["train"]["prompt"])[:200]
    genrec = GenRecModel.create(BackboneConfig(scratch=ScratchConfig(layers=1, hidden=32, heads=2, kv_heads=2,
                                                                     intermediate=64)), world["semid"], texts)
    genrec.save_pretrained(tmp_path / "m")
    back = GenRecModel.from_pretrained(tmp_path / "m")
    batch = genrec.tokenizer([texts[0]], return_tensors="pt")
    assert batch["input_ids"].tolist() == back.tokenizer([texts[0]], return_tensors="pt")["input_ids"].tolist()
    torch.testing.assert_close(genrec.model(**batch).logits, back.model(**batch).logits, atol=0, rtol=0)
    assert back.semid.fingerprint() == world["semid"].fingerprint()


def test_scratch_dropout_acts_in_training_only_and_survives_saving(tmp_path, world):
    texts = list(world["sft"]["train"]["prompt"])[:200]
    small = dict(layers=2, hidden=32, heads=2, kv_heads=2, intermediate=64)
    plain = GenRecModel.create(BackboneConfig(scratch=ScratchConfig(**small)), world["semid"], texts)
    dropped = GenRecModel.create(BackboneConfig(scratch=ScratchConfig(**small, dropout=0.3)), world["semid"], texts)
    batch = plain.tokenizer([texts[0]], return_tensors="pt")
    plain.model.eval(), dropped.model.eval()
    torch.testing.assert_close(plain.model(**batch).logits, dropped.model(**batch).logits, atol=0, rtol=0)
    dropped.model.train()
    first, second = dropped.model(**batch).logits, dropped.model(**batch).logits
    assert not torch.allclose(first, second)                      # a fresh mask per pass
    plain.model.train()
    torch.testing.assert_close(plain.model(**batch).logits, plain.model(**batch).logits, atol=0, rtol=0)
    hooked = [m for m in dropped.model.modules() if m._forward_hooks]
    assert len(hooked) == 1 + 2 * small["layers"]                 # embeddings, then attention and MLP per layer
    dropped.save_pretrained(tmp_path / "m")
    back = GenRecModel.from_pretrained(tmp_path / "m")
    assert len([m for m in back.model.modules() if m._forward_hooks]) == len(hooked)
    with pytest.raises(ValueError, match="dropout"):
        BackboneConfig(scratch={**small, "dropout": 1.0})


def test_lora_save_load_gives_identical_logits(tmp_path, world):
    backbone = BackboneConfig(name=_pretend_pretrained(tmp_path / "base", tied=False),
                              lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    genrec = GenRecModel.create(backbone, world["semid"])
    with torch.no_grad():  # move adapters and token rows away from their initial values
        for p in genrec.model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    genrec.save_pretrained(tmp_path / "m")
    back = GenRecModel.from_pretrained(tmp_path / "m")
    batch = genrec.tokenizer(["the user bought <a_1><b_2><c_3>"], return_tensors="pt")
    torch.testing.assert_close(genrec.model.eval()(**batch).logits, back.model(**batch).logits, atol=1e-6, rtol=0)


def test_recommendations_are_real_items(world):
    genrec = GenRecModel.create(BackboneConfig(scratch=ScratchConfig(layers=1, hidden=32, heads=2, kv_heads=2,
                                                                     intermediate=64)), world["semid"],
                                list(world["sft"]["train"]["prompt"])[:100])
    histories = [np.array([0, 1, 2]), np.array([5])]
    top = genrec.recommend(histories, k=10, beams=12)
    assert top.shape == (2, 10) and ((top >= 0) & (top < world["semid"].num_items)).all()
    exact, _ = genrec.recommend_prompts([genrec.history_prompt(histories[0])], k=3, exact=True)
    beam, _ = genrec.recommend_prompts([genrec.history_prompt(histories[0])], k=3, beams=world["semid"].num_items)
    assert exact.tolist() == beam.tolist()  # full-width beam search is exact
    everything = genrec.recommend(histories, k=world["semid"].num_items, beams=world["semid"].num_items)
    unseen = genrec.recommend(histories, k=5, beams=world["semid"].num_items, exclude_history=True)
    for row, history in enumerate(histories):  # exact search minus the history = the full ranking filtered
        assert unseen[row].tolist() == [i for i in everything[row] if i not in history][:5]


def test_unloadable_names_and_broken_folders(tmp_path):
    with pytest.raises(DataError, match="Offline sources"):
        load_pretrained("no-such-org/no-such-model")
    with pytest.raises(DataError, match="not a model saved by genrec"):
        GenRecModel.from_pretrained(tmp_path)
    (tmp_path / "genrec.json").write_text(json.dumps({"backbone": {"scratch": {}}, "peft": False}))
    with pytest.raises(DataError, match="missing tokenizer.json, semid/config.json, model.safetensors"):
        GenRecModel.from_pretrained(tmp_path)


def test_a_saved_model_keeps_its_prompt_templates(world, tmp_path, monkeypatch):
    from tasks import templates

    backbone = BackboneConfig(scratch=ScratchConfig(layers=1, hidden=32, heads=2, kv_heads=2, intermediate=64))
    genrec = GenRecModel.create(backbone, world["semid"], ["a b c"])
    genrec.save_pretrained(tmp_path / "m")
    history = world["dataset"].sequences()[0][:2]
    before = GenRecModel.from_pretrained(tmp_path / "m").history_prompt(history)
    assert before == templates.SEQREC[0].format(history=", ".join(world["semid"].item_to_tokens(int(i))
                                                                    for i in history))
    monkeypatch.setattr(templates, "SEQREC", ["Next after {history}?", *templates.SEQREC[1:]])  # a later release
    assert GenRecModel.from_pretrained(tmp_path / "m").history_prompt(history) == before
    assert GenRecModel.create(backbone, world["semid"], ["a"]).history_prompt(history).startswith("Next after")
