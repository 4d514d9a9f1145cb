"""The counts in ../shared/datasets/README.md, read by our loaders (skipped where that folder is absent)."""

import json

import pytest

from genrec.data import load_format

EXPECTED = {  # folder: (format, users, items, interactions)
    "beauty": ("p5", 22363, 12101, 198502),
    "sports": ("p5", 35598, 18357, 296337),
    "yelp": ("p5", 30431, 20033, 316354),
    "games": ("lcrec", 50546, 16859, 452989),
    "instruments": ("lcrec", 24772, 9922, 206153),
    "ml-100k": ("movielens", 943, 1682, 100000),
}


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_counts_match_the_published_files(shared_datasets, folder):
    fmt, users, items, interactions = EXPECTED[folder]
    ds = load_format(fmt, shared_datasets / folder)
    assert (ds.num_users, ds.num_items, len(ds.interactions)) == (users, items, interactions)


def test_text_is_aligned(shared_datasets):
    beauty = load_format("p5", shared_datasets / "beauty")
    assert beauty.items["title"][0].startswith("OPI Nail Lacquer")  # P5 id 1 = B004756YJA
    yelp = load_format("p5", shared_datasets / "yelp")
    assert yelp.items["title"][0] == "The Great Greek"  # LETTER id 0 = P5 id 1
    released = json.loads((shared_datasets / "yelp" / "Yelp.index.json").read_text())
    assert list(yelp.items["reference_codes"][0]) == released["0"]  # LETTER's codes, aligned like its text
    assert all(len(codes) == 4 for codes in yelp.items["reference_codes"])
    games = load_format("lcrec", shared_datasets / "games")
    assert games.items["item_id"][1] == "B00E1A1SP6" and games.items["title"][1].startswith("Nintendo 3DS XL")
