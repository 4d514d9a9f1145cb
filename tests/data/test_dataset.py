import logging

import numpy as np
import pandas as pd
import pytest

from genrec.data import DataError, RecDataset
from genrec.data.text import make_item


def _items(*ids):
    return [make_item(i, title=f"title {i}", categories=[["A", "B"], ["A", "C"]]) for i in ids]


def test_ids_are_integers_in_item_order_and_users_by_first_appearance():
    inter = pd.DataFrame({"user_id": ["u2", "u1", "u2"], "item_id": ["c", "a", "b"], "timestamp": [5, 1, 3]})
    ds = RecDataset.from_records(_items("a", "b", "c"), inter, "t")
    assert list(ds.items["item_id"]) == ["a", "b", "c"]
    assert list(ds.users["user_id"]) == ["u2", "u1"]
    # u2 (user 0): b at 3 then c at 5; u1 (user 1): a
    assert [list(s) for s in ds.sequences()] == [[1, 2], [0]]
    assert ds.items["categories"][0] == ["A", "B", "C"]


def test_equal_timestamps_keep_file_order():
    inter = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["c", "a", "b"], "timestamp": [7, 7, 7]})
    ds = RecDataset.from_records(_items("a", "b", "c"), inter, "t")
    assert list(ds.sequences()[0]) == [2, 0, 1]


def test_unknown_items_are_dropped_with_a_count(caplog):
    inter = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "zz", "zz"]})
    with caplog.at_level(logging.WARNING, logger="genrec.data"):
        ds = RecDataset.from_records(_items("a", "b"), inter, "t")
    assert "dropped 2 interactions with 1 unknown items" in caplog.text
    assert ds.meta["dropped_unknown_item_interactions"] == 2
    assert ds.num_items == 1 and ds.num_users == 1  # b had no interactions; v had only unknown items


def test_duplicate_item_ids_fail():
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["a"]})
    with pytest.raises(DataError, match="item id 'a' appears 2 times"):
        RecDataset.from_records(_items("a", "a"), inter, "t")


def test_no_interactions_fail():
    with pytest.raises(DataError, match="no interactions"):
        RecDataset.from_records(_items("a"), pd.DataFrame({"user_id": [], "item_id": []}), "t")


def test_save_load_round_trip(tmp_path):
    inter = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "b"], "timestamp": [1, 2, 3]})
    items = _items("a", "b")
    items[1]["title"] = None
    ds = RecDataset.from_records(items, inter, "t", {"format": "x"})
    ds.save(tmp_path / "ds")
    back = RecDataset.load(tmp_path / "ds")
    pd.testing.assert_frame_equal(back.interactions, ds.interactions)
    assert back.items.to_dict("records") == ds.items.to_dict("records")
    assert list(back.users["user_id"]) == ["u", "v"]
    assert back.meta == {"format": "x"} and back.name == "t"
    assert back.to_hf()["interactions"].num_rows == 3


def test_load_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DataError, match="missing items.parquet"):
        RecDataset.load(tmp_path)
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["a"]})
    RecDataset.from_records(_items("a"), inter, "t").save(tmp_path / "ds")
    (tmp_path / "ds" / "items.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="items.parquet: cannot be read"):
        RecDataset.load(tmp_path / "ds")


def test_save_replaces_atomically(tmp_path):
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["a"]})
    RecDataset.from_records(_items("a"), inter, "first").save(tmp_path / "ds")
    RecDataset.from_records(_items("a"), inter, "second").save(tmp_path / "ds")
    assert RecDataset.load(tmp_path / "ds").name == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temporary folder left behind


def test_sequences_match_a_groupby():
    rng = np.random.default_rng(0)
    inter = pd.DataFrame({"user_id": rng.integers(0, 30, 400).astype(str),
                          "item_id": rng.integers(0, 50, 400).astype(str),
                          "timestamp": rng.integers(0, 1000, 400)})
    ds = RecDataset.from_records(None, inter, "t")
    item_of = ds.item_index()
    for user, seq in zip(ds.users["user_id"], ds.sequences()):
        rows = inter[inter["user_id"] == user].sort_values("timestamp", kind="stable")
        assert list(seq) == [item_of[i] for i in rows["item_id"]]
