"""CTR baselines: rows and split, metrics, ID models, FLIP and ClickPrompt on a tiny BERT, save / load."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.ctr.data import FIELDS, FeatureVocab, ctr_table
from baselines.ctr.text import FieldTokens, TextEncoder, mask_fields
from baselines.ctr.train import CtrConfig, CtrModel, train_ctr
from genrec.data import DataError, RecDataset
from genrec.evaluate import ctr_metrics
from genrec.sources import MINILM, resolve

GENRES = ("Drama", "Comedy", "Action")


def movielens_like(users: int = 60, movies: int = 30, per_user: int = 12, seed: int = 0) -> RecDataset:
    """Ratings whose label follows gender x genre (90% of rows), at random times."""
    rng = np.random.default_rng(seed)
    items = [{"item_id": str(m), "title": f"Movie {m} (199{m % 10})", "description": None,
              "categories": [GENRES[m % 3]], "brand": None} for m in range(movies)]
    rows = []
    for u in range(users):
        for m in rng.choice(movies, per_user, replace=False):
            liked = (u % 2 == 0) == (m % 3 == 0)
            liked = liked if rng.random() < 0.9 else not liked
            rows.append((str(u), str(m), int(rng.integers(10**6)), 5.0 if liked else 2.0))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    dataset = RecDataset.from_records(items, inter, "ml-like")
    uid = dataset.users["user_id"].astype(int)
    dataset.users["age"] = (20 + uid % 40).astype(str)
    dataset.users["gender"] = np.where(uid % 2 == 0, "M", "F")
    dataset.users["occupation"] = "writer"
    dataset.users["zip_code"] = (10000 + uid % 7).astype(str)
    return dataset


@pytest.fixture(scope="module")
def splits():
    return ctr_table(movielens_like()).split()


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, saved as a folder `text_encoder` can name."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve(MINILM)[0])
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def small(method: str, tiny_bert: str, **extra) -> CtrConfig:
    settings = {"method": method, "text_encoder": tiny_bert, "max_length": 48,
                "id_model": {"hidden": 32, "mlp_layers": 2, "cross_layers": 2, "embed": 8},
                "clickprompt": {"prompts": 3}, "pretrain": {"batch_size": 32},
                "finetune": {"epochs": 1, "batch_size": 32}, **extra}
    from genrec.config import build

    return build(CtrConfig, settings, "ctr")


# ---- rows, split, metrics ---------------------------------------------------------------------------------

def test_rows_are_chronological_labelled_and_decoded(splits):
    table = ctr_table(movielens_like())
    assert len(table) == 60 * 12 and table.fields == FIELDS
    assert [len(p) for p in splits.values()] == [576, 72, 72]
    row = table.values[0]
    assert row[1] in ("male", "female") and row[2] in ("18-24", "25-34", "35-44", "45-49", "50-55", "56+")
    assert table.sentences()[0].startswith(f"user id is {row[0]}. gender is {row[1]}. age is {row[2]}.")
    assert set(np.unique(table.labels)) == {0.0, 1.0}


def test_chronological_split_puts_later_ratings_later():
    dataset = movielens_like()
    users, items = dataset.users["user_id"].to_numpy(), dataset.items["item_id"].to_numpy()
    when = {(users[u], items[i]): t for u, i, t in dataset.interactions[["user", "item", "timestamp"]].to_numpy()}
    parts = ctr_table(dataset).split()
    times = {name: [when[(row[0], row[5])] for row in part.values] for name, part in parts.items()}
    assert max(times["train"]) <= min(times["valid"]) and max(times["valid"]) <= min(times["test"])


def test_auc_and_log_loss_by_hand():
    labels, probs = np.array([1, 0, 1, 0, 1]), np.array([0.9, 0.4, 0.35, 0.1, 0.4])
    # positive/negative pairs ranked right: 0.9 > both, 0.35 > 0.1 only, 0.4 ties 0.4 (half) and > 0.1
    pairs = (2 + 1 + 1.5) / 6
    loss = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.9) + math.log(0.4)) / 5
    got = ctr_metrics(labels, probs)
    assert got["auc"] == pytest.approx(pairs) and got["logloss"] == pytest.approx(loss)


def test_bad_input_says_what():
    dataset = movielens_like()
    with pytest.raises(DataError, match="unknown 'rating'"):
        ctr_table(dataset, fields=("user id", "rating"))
    with pytest.raises(DataError, match="zip_code"):
        no_zip = movielens_like()
        no_zip.users = no_zip.users.drop(columns="zip_code")
        ctr_table(no_zip)
    with pytest.raises(DataError, match="no ratings"):
        no_ratings = movielens_like()
        no_ratings.interactions = no_ratings.interactions.drop(columns="rating")
        ctr_table(no_ratings)
    gap = movielens_like()
    gap.users.loc[3, "gender"] = None
    with pytest.raises(DataError, match="has no gender"):
        ctr_table(gap)
    with pytest.raises(DataError, match="too few"):
        ctr_table(movielens_like(users=1, per_user=5)).split()
    with pytest.raises(DataError, match="unknown CTR method"):
        CtrConfig(method="lr")


def test_vocabulary_from_training_rows_only(splits):
    vocab = FeatureVocab.fit(splits["train"])
    train_users = set(splits["train"].values[:, 0])
    encoded = vocab.encode(splits["test"])
    unseen = np.array([u not in train_users for u in splits["test"].values[:, 0]])
    assert (encoded[unseen, 0] == vocab.offsets[0]).all() and (encoded[~unseen, 0] > vocab.offsets[0]).all()
    assert (vocab.field_of()[encoded] == np.arange(len(FIELDS))).all()


# ---- ID models --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["deepfm", "dcnv2"])
def test_id_model_learns_a_few_hundred_rows(method, splits, tmp_path):
    cfg = small(method, "", finetune={"epochs": 15, "batch_size": 32, "patience": 15})
    model = train_ctr(cfg, splits)
    assert model.extra["valid"]["auc"] > 0.75
    model.save_pretrained(tmp_path)
    again = CtrModel.from_pretrained(tmp_path)
    np.testing.assert_array_equal(again.predict(splits["test"]), model.predict(splits["test"]))


def test_deepfm_second_order_term_equals_the_pairwise_sum():
    from baselines.ctr.models import IdModel, IdModelConfig

    model = IdModel(IdModelConfig(arch="deepfm", embed=4, hidden=8, mlp_layers=1), vocab_size=20, fields=3)
    features = torch.tensor([[1, 7, 15]])
    v = model.embed.table(features)[0].detach()
    pairwise = sum(float(v[i] @ v[j]) for i in range(3) for j in range(i + 1, 3))
    first = float(model.embed.first_order(features).sum())
    assert float(model.represent(features)[0, -1]) == pytest.approx(first + pairwise, abs=1e-6)


def test_damaged_model_folder_is_refused(splits, tmp_path):
    model = train_ctr(small("deepfm", ""), splits)
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(DataError, match="damaged"):
        CtrModel.from_pretrained(tmp_path)


# ---- the language-model side ------------------------------------------------------------------------------

def test_field_masks_cover_exactly_the_chosen_values(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    values = np.array([["u7", "female", "25-34", "K-12 student", "02139", "50", "Star Wars (1977)", "Sci-Fi"]],
                      dtype=object)
    ids, owner = FieldTokens(tokenizer, FIELDS, 96).encode(values)
    text = "user id is u7. gender is female. age is 25-34. occupation is K-12 student. zip code is 02139. " \
           "movie id is 50. title is Star Wars (1977). genre is Sci-Fi."
    reference = tokenizer(text)["input_ids"]
    assert ids[0, : len(reference)].tolist() == reference  # field-by-field tokens equal the whole sentence's
    chosen = torch.zeros(1, len(FIELDS), dtype=torch.bool)
    chosen[0, [3, 6]] = True
    masked, labels = mask_fields(torch.as_tensor(ids), torch.as_tensor(owner), chosen, tokenizer.mask_token_id)
    hit = (masked != torch.as_tensor(ids))[0]
    assert tokenizer.decode(torch.as_tensor(ids)[0][hit]) == "k - 12 student star wars ( 1977 )"
    assert (masked[0][hit] == tokenizer.mask_token_id).all() and (labels[0][~hit] == -100).all()
    assert (labels[0][hit] == torch.as_tensor(ids)[0][hit]).all()


def test_our_attention_equals_bert_and_prefixes_reach_every_layer(tiny_bert):
    encoder, tokenizer = TextEncoder.load(tiny_bert)
    encoder.eval()
    batch = tokenizer(["title is Heat (1995).", "genre is Drama."], padding=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    reference = encoder.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    plain = encoder(ids, mask, every_layer=True)
    keep = mask.bool()
    assert torch.allclose(plain[-1][keep], reference[keep], atol=1e-5)
    torch.manual_seed(1)
    prefix = [(torch.randn(2, 2, 3, 16), torch.randn(2, 2, 3, 16)) for _ in range(2)]
    prompted = encoder(ids, mask, prefix, every_layer=True)
    for layer in range(2):
        assert not torch.allclose(prompted[layer][keep], plain[layer][keep], atol=1e-3)
    without_second = encoder(ids, mask, [prefix[0], None], every_layer=True)
    assert torch.allclose(without_second[0], prompted[0])  # the layer before is unchanged
    assert not torch.allclose(without_second[1][keep], prompted[1][keep], atol=1e-3)


@pytest.mark.parametrize("method", ["flip", "clickprompt"])
def test_alpha_receives_gradient_and_moves(method, splits, tiny_bert):
    model = CtrModel(small(method, tiny_bert), FeatureVocab.fit(splits["train"]), TextEncoder.load(tiny_bert))
    batch = next(model.rows(splits["train"]).batches(32))
    before = model.net.alpha.item()
    optimizer = torch.optim.SGD(model.net.parameters(), lr=0.5)
    model.net.loss(batch).backward()
    assert model.net.alpha.grad.abs().item() > 0
    optimizer.step()
    assert model.net.alpha.item() != pytest.approx(before, abs=1e-6)


@pytest.mark.parametrize("method", ["flip", "clickprompt"])
def test_pretraining_sees_training_rows_only_and_saved_models_predict_the_same(method, splits, tiny_bert, tmp_path,
                                                                                monkeypatch):
    from baselines.ctr import clickprompt, flip

    seen = []
    pretrainer = flip.FlipPretrainer if method == "flip" else clickprompt.ClickPromptPretrainer
    original = pretrainer.losses
    monkeypatch.setattr(pretrainer, "losses", lambda self, batch, g: seen.append(batch["features"]) or
                        original(self, batch, g))
    model = train_ctr(small(method, tiny_bert), splits, tmp_path / "run")
    vocab = model.vocab
    rows = {tuple(r) for r in torch.cat(seen).tolist()}
    assert rows == {tuple(r) for r in vocab.encode(splits["train"]).tolist()}
    for other in ("valid", "test"):
        assert not rows & {tuple(r) for r in vocab.encode(splits[other]).tolist()}
    assert set(model.history["pretrain"][0]) >= ({"mlm", "mfm", "contrast"} if method == "flip" else {"mlm"})

    model.save_pretrained(tmp_path / "saved")
    again = CtrModel.from_pretrained(tmp_path / "saved")
    np.testing.assert_allclose(again.predict(splits["test"]), model.predict(splits["test"]), atol=1e-6)

    # the ID-only variant reuses that pretraining: its ID model starts from the pretrained weights
    reuse = CtrModel(small(f"{method}-{'id' if method == 'flip' else 'ctr'}", tiny_bert,
                           pretrained=str(tmp_path / "run")), vocab, TextEncoder.load(tiny_bert))
    reuse.load_pretraining(tmp_path / "run")
    trained = CtrModel(small(method, tiny_bert), vocab, TextEncoder.load(tiny_bert))
    trained.load_pretraining(tmp_path / "run")
    for (name, a), b in zip(reuse.id_model.state_dict().items(), trained.id_model.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(DataError, match="differs"):
        other = CtrModel(small(method, tiny_bert, id_model={"hidden": 16}), vocab, TextEncoder.load(tiny_bert))
        other.load_pretraining(tmp_path / "run")


def test_command_writes_model_results_and_plot(tmp_path, capsys):
    from genrec.cli import main

    movielens_like().save(tmp_path / "data")
    out = tmp_path / "deepfm"
    code = main(["baseline", "ctr", "--method", "deepfm", "--data", str(tmp_path / "data"), "--out", str(out),
                 "finetune.epochs=3", "id_model.hidden=16"])
    assert code == 0 and (out / "auc.png").stat().st_size > 0
    import json

    results = json.loads((out / "results.json").read_text())
    assert results["rows"] == {"train": 576, "valid": 72, "test": 72}
    model = CtrModel.from_pretrained(out)
    test = ctr_table(RecDataset.load(tmp_path / "data")).split()["test"]
    assert results["test"] == ctr_metrics(test.labels, model.predict(test))  # what the saved model predicts
    assert f"test AUC {results['test']['auc']:.4f}" in capsys.readouterr().out
    assert main(["baseline", "ctr", "--method", "dcnv2", "--data", str(tmp_path / "data"), "--out",
                 str(tmp_path / "x"), "--pretrained", str(out)]) == 2
