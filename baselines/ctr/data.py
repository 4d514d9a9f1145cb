"""CTR rows from a MovieLens dataset folder: one row per rating, label = rating > 3, eight fields decoded to
words, a global chronological 8:1:1 split, and the feature vocabulary of the training rows.

The text of a row is one sentence per field, "{field} is {value}.", in the fixed order of `FIELDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genrec.data import RecDataset
from genrec.errors import DataError

FIELDS = ("user id", "gender", "age", "occupation", "zip code", "movie id", "title", "genre")
USER_ATTRIBUTES = {"gender": "gender", "age": "age", "occupation": "occupation", "zip code": "zip_code"}
SPLIT_SHARES = (0.8, 0.1, 0.1)
POSITIVE_ABOVE = 3  # a rating above this is a click

AGE_BANDS = ((18, "under 18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55"))
OCCUPATIONS_1M = ("other or not specified", "academic/educator", "artist", "clerical/admin", "college/grad student",
                  "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
                  "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
                  "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer")
GENDERS = {"M": "male", "F": "female"}


def age_band(age: str) -> str:
    """ml-100k's raw ages and ml-1m's band codes (1, 18, 25, ...: each a band's lower bound) as one set of bands."""
    years = int(age)
    return next((band for upper, band in AGE_BANDS if years < upper), "56+")


def occupation_name(value: str) -> str:
    """ml-1m's occupation codes as names; ml-100k's are names already."""
    return OCCUPATIONS_1M[int(value)] if value.isdigit() and int(value) < len(OCCUPATIONS_1M) else value


@dataclass
class CtrTable:
    """Rows in chronological order: `values` (rows, fields) decoded strings, `labels` 0/1."""

    fields: tuple[str, ...]
    values: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, index) -> CtrTable:
        return CtrTable(self.fields, self.values[index], self.labels[index])

    def split(self) -> dict[str, CtrTable]:
        """Train, validation and test: the first 80%, the next 10% and the last 10% of rows in time."""
        bounds = np.round(np.cumsum((0, *SPLIT_SHARES)) * len(self)).astype(int)
        parts = {name: self.rows(slice(bounds[i], bounds[i + 1])) for i, name in enumerate(("train", "valid", "test"))}
        for name, part in parts.items():
            if len(part) == 0 or len(np.unique(part.labels)) < 2:
                raise DataError(f"CTR split {name!r} has {len(part)} rows and needs both labels; the dataset has "
                                f"{len(self)} ratings, too few for an 8:1:1 split")
        return parts

    def sentences(self) -> list[str]:
        return [sentence(self.fields, row) for row in self.values]


def sentence(fields: tuple[str, ...], values) -> str:
    return " ".join(f"{field} is {value}." for field, value in zip(fields, values))


def check_fields(fields) -> tuple[str, ...]:
    fields = tuple(fields)
    unknown = [f for f in fields if f not in FIELDS]
    if unknown or not fields or len(set(fields)) < len(fields):
        raise DataError(f"CTR fields {list(fields)}: {'unknown ' + ', '.join(map(repr, unknown)) if unknown else ''}"
                        f"{'' if fields else 'none given'}{' repeated' if len(set(fields)) < len(fields) else ''}"
                        f" (available, in this order: {', '.join(FIELDS)})")
    return tuple(f for f in FIELDS if f in fields)


def ctr_table(dataset: RecDataset, fields=FIELDS) -> CtrTable:
    """Every rating of a MovieLens dataset as a CTR row, oldest first (ties keep file order)."""
    fields = check_fields(fields)
    inter = dataset.interactions
    if "rating" not in inter:
        raise DataError(f"{dataset.name}: the interactions carry no ratings; CTR rows need MovieLens ratings "
                        "(prepare the data with --format movielens)")
    needed = [USER_ATTRIBUTES[f] for f in fields if f in USER_ATTRIBUTES]
    missing = [c for c in needed if c not in dataset.users]
    if missing:
        raise DataError(f"{dataset.name}: users have no {', '.join(missing)}; CTR rows need the user attributes of "
                        "MovieLens u.user (ml-100k) or users.dat (ml-1m); ml-latest has none")
    for column in needed:
        empty = dataset.users[column].isna() | (dataset.users[column].astype(str).str.strip() == "")
        if empty.any():
            raise DataError(f"{dataset.name}: user {dataset.users['user_id'][int(empty.to_numpy().argmax())]!r} has "
                            f"no {column} ({int(empty.sum())} users lack it)")
    order = np.argsort(inter["timestamp"].to_numpy(), kind="stable")
    users, items = inter["user"].to_numpy()[order], inter["item"].to_numpy()[order]
    columns = {
        "user id": dataset.users["user_id"].to_numpy(),
        "movie id": dataset.items["item_id"].to_numpy(),
        "title": np.array(dataset.titles(), dtype=object),
        "genre": np.array([c[0] if len(c) else "unknown" for c in dataset.items["categories"]], dtype=object),
    }
    decode = {"gender": lambda v: GENDERS.get(v, v), "age": age_band, "occupation": occupation_name,
              "zip code": str}
    for field, column in USER_ATTRIBUTES.items():
        if field in fields:
            columns[field] = np.array([decode[field](str(v).strip()) for v in dataset.users[column]], dtype=object)
    on_user = {"user id", *USER_ATTRIBUTES}
    values = np.stack([columns[f][users if f in on_user else items] for f in fields], axis=1).astype(object)
    labels = (inter["rating"].to_numpy()[order] > POSITIVE_ABOVE).astype(np.float32)
    return CtrTable(fields, values, labels)


class FeatureVocab:
    """Each field's values seen in training, as indices of one shared embedding table; index 0 of each field's
    range stands for a value training never saw (a new user or movie in the later rows)."""

    def __init__(self, fields: tuple[str, ...], values: list[list[str]]):
        self.fields, self.values = fields, values
        self.index = [{v: i + 1 for i, v in enumerate(vs)} for vs in values]
        self.offsets = np.cumsum([0, *[len(vs) + 1 for vs in values]])[:-1]

    @classmethod
    def fit(cls, table: CtrTable) -> FeatureVocab:
        return cls(table.fields, [sorted(set(map(str, table.values[:, f]))) for f in range(len(table.fields))])

    @property
    def size(self) -> int:
        return int(self.offsets[-1] + len(self.values[-1]) + 1)

    def field_of(self) -> np.ndarray:
        """The field of each index of the shared table."""
        return np.repeat(np.arange(len(self.fields)), [len(vs) + 1 for vs in self.values])

    def encode(self, table: CtrTable) -> np.ndarray:
        if table.fields != self.fields:
            raise DataError(f"CTR rows have fields {list(table.fields)}, the model was trained on {list(self.fields)}")
        local = np.array([[index.get(str(v), 0) for v, index in zip(row, self.index)] for row in table.values],
                         dtype=np.int64).reshape(len(table), len(self.fields))
        return local + self.offsets[None, :]

    def to_dict(self) -> dict:
        return {"fields": list(self.fields), "values": self.values}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureVocab:
        return cls(tuple(data["fields"]), data["values"])
