"""Every loader on small files written here in exactly the format users have."""

import gzip
import json
import logging

import pytest

from genrec.data import DataError, load_format


def _seqs(ds):
    """{original user id: [original item ids in order]} for readable assertions."""
    ids = list(ds.items["item_id"])
    return {u: [ids[i] for i in s] for u, s in zip(ds.users["user_id"], ds.sequences())}


def _item(ds, item_id):
    return ds.items.set_index("item_id").loc[item_id].to_dict()


# ---- MovieLens -------------------------------------------------------------------------------------------

def test_movielens_100k(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t5\t300\n2\t10\t3\t100\n1\t20\t4\t200\n")
    (tmp_path / "u.genre").write_text("unknown|0\nAction|1\nComedy|2\n\n")
    (tmp_path / "u.item").write_bytes(
        "10|Amélie (2001)|01-Jan-2001||http://x|0|0|1\n20|Heat (1995)|01-Jan-1995||http://y|0|1|0\n".encode("latin-1"))
    (tmp_path / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    ds = load_format("movielens", tmp_path)
    assert _seqs(ds) == {"1": ["20", "10"], "2": ["10"]}
    assert _item(ds, "10")["title"] == "Amélie (2001)" and list(_item(ds, "10")["categories"]) == ["Comedy"]
    assert ds.users.set_index("user_id").loc["2", "occupation"] == "other"
    assert ds.users.set_index("user_id").loc["1", "zip_code"] == "85711"
    ratings = {(ds.users["user_id"][u], ds.items["item_id"][i]): r
               for u, i, r in ds.interactions[["user", "item", "rating"]].itertuples(index=False)}
    assert ratings == {("1", "10"): 5.0, ("2", "10"): 3.0, ("1", "20"): 4.0}
    assert ds.meta["variant"] == "ml-100k"
    kept = ds.subset(ds.interactions["user"].to_numpy() == ds.users["user_id"].tolist().index("1"), "user 1 only")
    assert kept.users["zip_code"].tolist() == ["85711"] and sorted(kept.interactions["rating"]) == [4.0, 5.0]


def test_movielens_1m(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::5::4::978300760\n1::7::3::978300000\n")
    movies = "5::Café (1999)::Drama|Romance\n7::Up (2009)::Animation\n"
    (tmp_path / "movies.dat").write_bytes(movies.encode("latin-1"))
    ds = load_format("movielens", tmp_path)
    assert _seqs(ds) == {"1": ["7", "5"]}
    assert list(_item(ds, "5")["categories"]) == ["Drama", "Romance"] and _item(ds, "5")["title"] == "Café (1999)"


def test_movielens_latest_csv(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n3,1,4.0,20\n3,2,3.5,10\n")
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,"American President, The (1995)",Comedy|Drama\n2,Nada (2000),(no genres listed)\n')
    ds = load_format("movielens", tmp_path)
    assert _seqs(ds) == {"3": ["2", "1"]}
    assert _item(ds, "1")["title"] == "American President, The (1995)"
    assert list(_item(ds, "2")["categories"]) == []


def test_movielens_bad_line(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t5\t300\n2\t10\n")
    (tmp_path / "u.genre").write_text("Drama|0\n")
    (tmp_path / "u.item").write_text("10|A|x||u|1\n")
    with pytest.raises(DataError, match=r"u.data: line 2 has 2 fields"):
        load_format("movielens", tmp_path)


# ---- Amazon 2014 / 2018 / 2023 ---------------------------------------------------------------------------

def _gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def test_amazon_2014_ratings_and_python_literal_meta(tmp_path):
    (tmp_path / "ratings_Beauty.csv").write_text("AUSER1,B000000001,5.0,200\nAUSER1,B000000002,4.0,100\n"
                                                  "AUSER2,B000000001,3.0,50\nAUSER2,B0000000ZZ,3.0,60\n")
    _gz(tmp_path / "meta_Beauty.json.gz", [
        "{'asin': 'B000000001', 'title': 'Rose &amp; Honey Soap', "
        "'categories': [['Beauty', 'Bath'], ['Beauty', 'Soap']], 'brand': 'Acme', 'description': 'Gentle.'}",
        "{'asin': 'B000000002', 'title': 'Shea Lotion', 'categories': [['Beauty']]}",
    ])
    ds = load_format("amazon", tmp_path)
    assert _seqs(ds) == {"AUSER1": ["B000000002", "B000000001"], "AUSER2": ["B000000001"]}
    soap = _item(ds, "B000000001")
    assert soap["title"] == "Rose & Honey Soap" and list(soap["categories"]) == ["Beauty", "Bath", "Soap"]
    assert soap["brand"] == "Acme" and soap["description"] == "Gentle."
    assert ds.meta["dropped_unknown_item_interactions"] == 1


def test_amazon_2018_ratings_put_the_item_first(tmp_path):
    (tmp_path / "Video_Games.csv").write_text("B000000001,A2USER,5.0,10\n0439381673,A2USER,4.0,20\n")
    _gz(tmp_path / "meta_Video_Games.json.gz", [
        json.dumps({"asin": "B000000001", "title": "Game One", "category": ["Video Games", "PC"],
                    "description": ["Fun.", "Very fun."], "brand": "Studio"}),
        json.dumps({"asin": "0439381673", "title": "Game Guide", "category": ["Video Games"]}),
    ])
    ds = load_format("amazon", tmp_path)
    assert _seqs(ds) == {"A2USER": ["B000000001", "0439381673"]}
    assert _item(ds, "B000000001")["description"] == "Fun. Very fun."


def test_amazon_reviews_json_gz(tmp_path):
    _gz(tmp_path / "reviews_Toys_5.json.gz", [
        json.dumps({"reviewerID": "R1", "asin": "B000000002", "overall": 5.0, "unixReviewTime": 9}),
        json.dumps({"reviewerID": "R1", "asin": "B000000001", "overall": 4.0, "unixReviewTime": 3}),
    ])
    ds = load_format("amazon", tmp_path)  # no metadata: items come from the reviews, without text
    assert _seqs(ds) == {"R1": ["B000000001", "B000000002"]}


def test_amazon_reviews_missing_field(tmp_path):
    _gz(tmp_path / "reviews_Toys_5.json.gz", [json.dumps({"reviewerID": "R1", "asin": "B1"})])
    with pytest.raises(DataError, match="line 1 has no field 'unixReviewTime'"):
        load_format("amazon", tmp_path)


def test_amazon2023_jsonl(tmp_path):
    reviews = [
        {"rating": 5.0, "user_id": "U1", "asin": "B0CHILD001", "parent_asin": "B0PARENT01", "timestamp": 1700000000500},
        {"rating": 4.0, "user_id": "U1", "asin": "B0CHILD002", "parent_asin": "B0PARENT02", "timestamp": 1600000000000},
    ]
    (tmp_path / "All_Beauty.jsonl").write_text("\n".join(json.dumps(r) for r in reviews) + "\n")
    meta = [{"parent_asin": "B0PARENT01", "title": "Lip Balm", "description": ["Soft"], "categories": [],
             "store": "Balmy", "main_category": "All Beauty"},
            {"parent_asin": "B0PARENT02", "title": "Face Mask", "description": [], "categories": ["Beauty", "Masks"],
             "store": None}]
    (tmp_path / "meta_All_Beauty.jsonl").write_text("\n".join(json.dumps(m) for m in meta) + "\n")
    ds = load_format("amazon2023", tmp_path)
    assert _seqs(ds) == {"U1": ["B0PARENT02", "B0PARENT01"]}
    assert _item(ds, "B0PARENT01")["brand"] == "Balmy"
    assert list(_item(ds, "B0PARENT02")["categories"]) == ["Beauty", "Masks"]


# ---- LC-Rec ----------------------------------------------------------------------------------------------

def test_lcrec(tmp_path):
    (tmp_path / "Arts.inter.json").write_text(json.dumps({"0": [1, 0, 2], "1": [2, 1]}))
    (tmp_path / "Arts.item.json").write_text(json.dumps({
        "0": {"title": "Brush", "description": "Soft brush"}, "1": {"title": "Paint"}, "2": {"title": "Canvas"}}))
    (tmp_path / "Arts.index.json").write_text(json.dumps({str(i): [f"<a_{i}>", f"<b_{i}>"] for i in range(3)}))
    (tmp_path / "Arts.item2id").write_text("ASIN0\t0\nASIN1\t1\nASIN2\t2\n")
    ds = load_format("lcrec", tmp_path)
    assert _seqs(ds) == {"0": ["ASIN1", "ASIN0", "ASIN2"], "1": ["ASIN2", "ASIN1"]}
    assert list(ds.items["item_id"]) == ["ASIN0", "ASIN1", "ASIN2"]  # internal id = LC-Rec id
    assert _item(ds, "ASIN0")["description"] == "Soft brush"
    assert list(_item(ds, "ASIN2")["reference_codes"]) == ["<a_2>", "<b_2>"]


def test_lcrec_bad_history(tmp_path):
    (tmp_path / "Arts.inter.json").write_text(json.dumps({"0": []}))
    with pytest.raises(DataError, match="user '0' has no list of items"):
        load_format("lcrec", tmp_path)


# ---- P5 --------------------------------------------------------------------------------------------------

def _p5(tmp_path):
    (tmp_path / "sequential_data.txt").write_text("1 2 1 3\n2 3 2\n")
    (tmp_path / "datamaps.json").write_text(json.dumps({
        "item2id": {"X1": "1", "X2": "2", "X3": "3"}, "id2item": {"1": "X1", "2": "X2", "3": "X3"},
        "user2id": {"UA": "1", "UB": "2"}, "id2user": {"1": "UA", "2": "UB"}}))


def test_p5_with_zero_based_text_file(tmp_path, caplog):
    _p5(tmp_path)
    text = tmp_path / "elsewhere.json"
    text.write_text(json.dumps({"0": {"title": "one"}, "1": {"title": "two"}, "2": {"title": "three"}}))
    with caplog.at_level(logging.INFO, logger="genrec.data"):
        ds = load_format("p5", tmp_path, item_text=text)
    assert "offset by 1" in caplog.text
    assert _seqs(ds) == {"UA": ["X2", "X1", "X3"], "UB": ["X3", "X2"]}
    assert list(ds.items["title"]) == ["one", "two", "three"]


def test_p5_released_codes_are_aligned_like_the_text(tmp_path):
    _p5(tmp_path)
    (tmp_path / "Shop.item.json").write_text(json.dumps({"0": {"title": "one"}, "1": {"title": "two"},
                                                         "2": {"title": "three"}}))
    (tmp_path / "Shop.index.json").write_text(json.dumps({"0": ["<a_1>", "<b_0>"], "1": ["<a_0>", "<b_1>"],
                                                          "2": ["<a_1>", "<b_1>"]}))  # 0-based, like LETTER's
    ds = load_format("p5", tmp_path)
    assert list(_item(ds, "X1")["reference_codes"]) == ["<a_1>", "<b_0>"]  # P5 id 1 = LETTER id 0
    assert list(_item(ds, "X3")["reference_codes"]) == ["<a_1>", "<b_1>"]
    assert _item(ds, "X2")["title"] == "two"


def test_p5_text_joined_by_asin(tmp_path):
    _p5(tmp_path)
    (tmp_path / "shop_item_text.json").write_text(json.dumps({  # keys deliberately unrelated to P5 ids
        "a": {"asin": "X3", "title": "three", "brand": "B"}, "b": {"asin": "X1", "title": "one"},
        "c": {"asin": "X2", "title": "two", "categories": [["Cat", "Sub"]]}}))
    ds = load_format("p5", tmp_path)  # found by its name
    assert list(ds.items["title"]) == ["one", "two", "three"]
    assert list(_item(ds, "X2")["categories"]) == ["Cat", "Sub"]


def test_p5_title_from_a_named_field(tmp_path):
    """Sports' text file has no titles, only IDGenRec's title keywords; `title_field` makes them the title."""
    _p5(tmp_path)
    (tmp_path / "shop_item_text.json").write_text(json.dumps({
        "1": {"asin": "X1", "title": None, "attributes": ["Hunting"], "idgenrec_textual_id": "ghost punch"},
        "2": {"asin": "X2", "title": None, "attributes": ["Golf"], "idgenrec_textual_id": "golf tees"},
        "3": {"asin": "X3", "title": "kept", "attributes": None}}))
    assert list(load_format("p5", tmp_path).items["title"]) \
        == [None, None, "kept"]
    ds = load_format("p5", tmp_path, title_field="idgenrec_textual_id")
    assert list(ds.items["title"]) == ["ghost punch", "golf tees", None]  # the named field wins, even when empty
    assert list(_item(ds, "X1")["categories"]) == ["Hunting"]
    with pytest.raises(DataError, match="no record has a 'subtitle' field.*fields: asin, attributes"):
        load_format("p5", tmp_path, title_field="subtitle")
    with pytest.raises(DataError, match="only the formats with a separate item-text file"):
        load_format("movielens", tmp_path, title_field="idgenrec_textual_id")


def test_p5_unknown_item_and_duplicate_user(tmp_path):
    _p5(tmp_path)
    (tmp_path / "sequential_data.txt").write_text("1 2 9\n")
    with pytest.raises(DataError, match=r"line 1: item '9' is not in datamaps.json"):
        load_format("p5", tmp_path)
    (tmp_path / "sequential_data.txt").write_text("1 2\n1 3\n")
    with pytest.raises(DataError, match="user '1' on line 2 already has line 1"):
        load_format("p5", tmp_path)


# ---- RecBole / UniSRec -----------------------------------------------------------------------------------

def test_recbole_atomic(tmp_path):
    (tmp_path / "ml.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                       "u1\ti2\t4\t20.0\nu1\ti1\t5\t10.0\n")
    (tmp_path / "ml.item").write_text("item_id:token\tmovie_title:token_seq\ttitle:token_seq\tgenre:token_seq\n"
                                      "i1\tignored\tFirst\tDrama,War\ni2\t\tSecond\t\n")
    ds = load_format("recbole", tmp_path)
    assert _seqs(ds) == {"u1": ["i1", "i2"]}
    assert _item(ds, "i1")["title"] == "First" and list(_item(ds, "i1")["categories"]) == ["Drama", "War"]


def test_unisrec_rebuilds_full_sequences(tmp_path):
    # user 0: full sequence 1 2 3 4 5 (train 1 2 3, valid 4, test 5); user 1: 2 3 1 (train 2, valid 3, test 1)
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (tmp_path / "Sci.train.inter").write_text(header + "0\t1 2\t3\n0\t1\t2\n")
    (tmp_path / "Sci.valid.inter").write_text(header + "0\t1 2 3\t4\n1\t2\t3\n")
    (tmp_path / "Sci.test.inter").write_text(header + "0\t1 2 3 4\t5\n1\t2 3\t1\n")
    (tmp_path / "Sci.item2index").write_text("".join(f"A{i}\t{i}\n" for i in range(1, 6)))
    texts = "".join(f"A{i}\titem {i}\n" for i in range(1, 6))
    (tmp_path / "Sci.text").write_text("item_id:token\ttext:token_seq\n" + texts)
    ds = load_format("recbole", tmp_path)
    assert _seqs(ds) == {"0": ["A1", "A2", "A3", "A4", "A5"], "1": ["A2", "A3", "A1"]}
    assert _item(ds, "A3")["description"] == "item 3"


def test_unisrec_inconsistent_files(tmp_path):
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (tmp_path / "Sci.train.inter").write_text(header + "0\t1\t2\n")
    (tmp_path / "Sci.valid.inter").write_text(header + "0\t1 2\t3\n")
    (tmp_path / "Sci.test.inter").write_text(header + "0\t1 9 3\t4\n")
    with pytest.raises(DataError, match="does not continue the train and valid rows"):
        load_format("recbole", tmp_path)


# ---- bad input common to all ------------------------------------------------------------------------------

def test_bad_encoding_names_file_and_line(tmp_path):
    (tmp_path / "Arts.inter.json").write_bytes(b'{"0": [0],\n "1": [1]}\xff\n')
    with pytest.raises(DataError, match=r"Arts.inter.json: line 2 .* not valid utf-8"):
        load_format("lcrec", tmp_path)


def test_unknown_format_and_missing_path(tmp_path):
    with pytest.raises(DataError, match="unknown format 'csv'"):
        load_format("csv", tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        load_format("p5", tmp_path / "nope")
    with pytest.raises(DataError, match="no sequence file"):
        load_format("p5", tmp_path)


def test_wrong_columns(tmp_path):
    (tmp_path / "ratings.csv").write_text("user,movie,rating,timestamp\n1,2,3,4\n")
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n2,A,B\n")
    with pytest.raises(DataError, match=r"ratings.csv: missing column\(s\) userId, movieId"):
        load_format("movielens", tmp_path)


def test_empty_text_fields_become_missing(tmp_path, caplog):
    (tmp_path / "Arts.inter.json").write_text(json.dumps({"0": [0, 1]}))
    items = {"0": {"title": "  ", "description": ""}, "1": {"title": "ok"}}
    (tmp_path / "Arts.item.json").write_text(json.dumps(items))
    with caplog.at_level(logging.WARNING, logger="genrec.data"):
        ds = load_format("lcrec", tmp_path)
    assert ds.items["title"][0] is None and "1 of 2 items have no text" in caplog.text


def test_amazon_ratings_bad_time_names_the_row(tmp_path):
    (tmp_path / "ratings_Toys.csv").write_text("AUSER1,B000000001,5.0,200\nAUSER1,B000000002,4.0,soon\n")
    with pytest.raises(DataError, match=r"data row 2: time 'soon' is not a number"):
        load_format("amazon", tmp_path)
