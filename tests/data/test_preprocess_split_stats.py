import numpy as np
import pandas as pd
import pytest

from genrec.data import DataError, RecDataset, dataset_stats, deduplicate, kcore, leave_one_out


def _dataset(pairs):
    """pairs: (user, item) in chronological order."""
    inter = pd.DataFrame({"user_id": [str(u) for u, _ in pairs], "item_id": [str(i) for _, i in pairs]})
    return RecDataset.from_records(None, inter, "t")


def _as_pairs(ds):
    users, items = list(ds.users["user_id"]), list(ds.items["item_id"])
    return [(users[u], items[i]) for u, i in zip(ds.interactions["user"], ds.interactions["item"])]


def _kcore_reference(pairs, k):
    """Definition by brute force: repeatedly delete any row whose user or item has fewer than k rows."""
    rows = list(pairs)
    while True:
        users = pd.Series([u for u, _ in rows]).value_counts()
        items = pd.Series([i for _, i in rows]).value_counts()
        kept = [(u, i) for u, i in rows if users[u] >= k and items[i] >= k]
        if len(kept) == len(rows):
            return kept
        rows = kept


@pytest.mark.parametrize("seed", range(5))
def test_kcore_matches_the_definition(seed):
    rng = np.random.default_rng(seed)
    pairs = [(str(u), str(i)) for u, i in zip(rng.zipf(1.6, 600) % 60, rng.zipf(1.4, 600) % 80)]
    ds = kcore(_dataset(pairs), 3)
    assert sorted(_as_pairs(ds)) == sorted(_kcore_reference(pairs, 3))
    counts_u = ds.interactions["user"].value_counts()
    counts_i = ds.interactions["item"].value_counts()
    assert counts_u.min() >= 3 and counts_i.min() >= 3


def test_kcore_cascades_and_can_empty():
    # item c has 1 interaction; removing it leaves user 3 with 1 interaction, which removes item b's count...
    pairs = [(1, "a"), (1, "b"), (2, "a"), (2, "b"), (3, "b"), (3, "c")]
    assert sorted(_as_pairs(kcore(_dataset(pairs), 2))) == [("1", "a"), ("1", "b"), ("2", "a"), ("2", "b")]
    with pytest.raises(DataError, match="3-core is empty"):
        kcore(_dataset(pairs), 3)


def test_dedup_keeps_the_first_occurrence():
    pairs = [(1, "a"), (1, "b"), (1, "a"), (2, "a"), (2, "a")]
    ds = deduplicate(_dataset(pairs))
    assert _as_pairs(ds) == [("1", "a"), ("1", "b"), ("2", "a")]
    assert ds.meta["preprocessing"] == ["dedup: -2 repeated pairs"]


def test_leave_one_out_by_hand():
    pairs = [(1, i) for i in "abcdef"] + [(2, "x"), (2, "y")] + [(3, "p"), (3, "q"), (3, "r")]
    ds = _dataset(pairs)
    split = leave_one_out(ds, max_history=2)
    name = dict(enumerate(ds.items["item_id"]))
    as_names = lambda seq: [name[i] for i in seq]  # noqa: E731
    assert [as_names(s) for s in split.train] == [list("abcd"), ["x", "y"], ["p"]]
    assert split.train_only_users == 1
    assert list(split.valid.users) == [0, 2] and list(split.test.users) == [0, 2]
    assert [as_names(h) for h in split.valid.histories] == [["c", "d"], ["p"]]
    assert as_names(split.valid.targets) == ["e", "q"]
    assert [as_names(h) for h in split.test.histories] == [["d", "e"], ["p", "q"]]
    assert as_names(split.test.targets) == ["f", "r"]


def test_no_held_out_item_in_training():
    rng = np.random.default_rng(1)
    pairs = [(u, f"i{rng.integers(50)}") for u in range(40) for _ in range(rng.integers(3, 9))]
    split = leave_one_out(_dataset(pairs))
    for pos, user in enumerate(split.test.users):
        seq = _dataset(pairs).sequences()[user]
        assert len(split.train[user]) == len(seq) - 2
        assert split.test.targets[pos] == seq[-1] and split.valid.targets[pos] == seq[-2]


def test_stats_by_hand():
    pairs = [(1, "a"), (1, "b"), (1, "a"), (2, "b"), (3, "c"), (3, "a"), (3, "b"), (3, "d")]
    stats = dataset_stats(_dataset(pairs))
    assert (stats["users"], stats["items"], stats["interactions"]) == (3, 4, 8)
    assert stats["density"] == pytest.approx(8 / 12)
    assert stats["seq_len"]["min"] == 1 and stats["seq_len"]["max"] == 4 and stats["seq_len"]["p50"] == 3
    assert stats["repeated_pairs"] == 1 and stats["users_under_3"] == 1
    assert stats["items_without_text"] == 4  # items came from interactions only
