"""The embedded default dataset: a seeded, synthetic shop that needs no download.

Not real data: it exists so the demo and the tests run offline on a fresh machine, with enough structure
for a sequential model to learn. A catalogue of six departments, each with three "journeys" of five
complementary product types (tent -> sleeping bag -> sleeping pad -> ...); every item has a brand, a price
tier, a variant, a title and a short description. Users have one or two favourite departments, a price tier
and some brand loyalty; they mostly walk a journey to its next product type, sometimes start a new journey
in a favourite department, and now and then buy a popular item at random. Item popularity is Zipf-skewed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .dataset import RecDataset
from .text import make_item

DEPARTMENTS: dict[str, dict[str, list[str]]] = {
    "Outdoors": {
        "Camping": ["Tent", "Sleeping Bag", "Sleeping Pad", "Camp Stove", "Headlamp"],
        "Hiking": ["Hiking Boots", "Trekking Poles", "Daypack", "Water Filter", "Rain Jacket"],
        "Fishing": ["Fishing Rod", "Fishing Reel", "Fishing Line", "Tackle Box", "Lure Set"],
    },
    "Kitchen": {
        "Coffee": ["Coffee Grinder", "Pour-Over Dripper", "Gooseneck Kettle", "Coffee Scale", "Paper Filters"],
        "Baking": ["Stand Mixer", "Mixing Bowls", "Baking Sheet", "Cooling Rack", "Piping Bag Set"],
        "Knives": ["Chef Knife", "Cutting Board", "Knife Sharpener", "Knife Block", "Paring Knife"],
    },
    "Electronics": {
        "Photography": ["Camera Body", "Zoom Lens", "Memory Card", "Tripod", "Camera Bag"],
        "Audio": ["Turntable", "Bookshelf Speakers", "Phono Preamp", "Speaker Stands", "Record Brush"],
        "Computing": ["Laptop", "Laptop Sleeve", "Wireless Mouse", "USB-C Hub", "External SSD"],
    },
    "Beauty": {
        "Skincare": ["Cleanser", "Toner", "Serum", "Moisturizer", "Sunscreen"],
        "Hair Care": ["Shampoo", "Conditioner", "Hair Mask", "Hair Dryer", "Round Brush"],
        "Nails": ["Nail Polish", "Base Coat", "Top Coat", "Nail File", "Cuticle Oil"],
    },
    "Sports": {
        "Running": ["Running Shoes", "Running Socks", "Sports Watch", "Hydration Belt", "Foam Roller"],
        "Yoga": ["Yoga Mat", "Yoga Blocks", "Yoga Strap", "Meditation Cushion", "Mat Cleaner"],
        "Cycling": ["Road Bike", "Bike Helmet", "Cycling Gloves", "Bike Lights", "Bike Lock"],
    },
    "Home": {
        "Bedding": ["Mattress Topper", "Pillow", "Duvet", "Sheet Set", "Weighted Blanket"],
        "Gardening": ["Garden Hose", "Hose Nozzle", "Pruning Shears", "Garden Gloves", "Raised Planter"],
        "Cleaning": ["Robot Vacuum", "Replacement Filters", "Microfiber Cloths", "Steam Mop", "Spray Bottles"],
    },
}
BRANDS: dict[str, list[str]] = {
    "Outdoors": ["Northpeak", "Trailwise", "Basecamp Co", "Ridgeline", "Fernwood", "Summit Supply"],
    "Kitchen": ["Hearthware", "Copperleaf", "Brewcraft", "Oakmill", "Saltbox", "Kettle & Co"],
    "Electronics": ["Voltaic", "Lumera", "Soundcraft Labs", "Pixelon", "Arcwave", "Tessel"],
    "Beauty": ["Dewlune", "Petalist", "Glowry", "Aurabelle", "Purelle", "Velvette"],
    "Sports": ["Stridex", "Zenform", "Velocita", "Pacewell", "Corefit", "Apexa"],
    "Home": ["Nestwell", "Greenthumb", "Cleanly", "Softhaven", "Homestead", "Brightnook"],
}
TIERS = ["budget", "standard", "premium"]
TIER_WORDS = {"budget": ["Basic", "Everyday", "Value"], "standard": ["Classic", "Essential", "Plus"],
              "premium": ["Pro", "Elite", "Signature"]}
VARIANTS = ["Black", "Slate Grey", "Forest Green", "Navy", "Sand", "Crimson", "White", "Copper", "Compact",
            "Large", "Travel Size", "Twin Pack"]
USES = {"Outdoors": "trips outdoors", "Kitchen": "the home cook", "Electronics": "everyday tech",
        "Beauty": "a daily routine", "Sports": "training and recovery", "Home": "a calmer home"}
TIER_PHRASES = {"budget": "An affordable", "standard": "A dependable", "premium": "A top-of-the-line"}


@dataclass
class SyntheticConfig:
    users: int = 3000
    items_per_type: int = 10
    mean_length: float = 11.0     # mean interactions per user (at least min_length)
    min_length: int = 5
    p_next_in_journey: float = 0.6
    p_new_journey: float = 0.28   # the rest is a random popular item
    brand_loyalty: float = 4.0    # weight multiplier for the brand last bought in a department
    tier_match: float = 3.0       # weight multiplier for the user's price tier
    zipf: float = 1.0
    seed: int = 0


def _catalogue(cfg: SyntheticConfig, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for department, journeys in DEPARTMENTS.items():
        brand_tier = {b: TIERS[i % 3] for i, b in enumerate(BRANDS[department])}
        for journey, types in journeys.items():
            for step, kind in enumerate(types):
                used = set()
                for _ in range(cfg.items_per_type):
                    while True:
                        brand = str(rng.choice(BRANDS[department]))
                        tier = brand_tier[brand]
                        word = str(rng.choice(TIER_WORDS[tier]))
                        variant = str(rng.choice(VARIANTS))
                        if (brand, word, variant) not in used:
                            used.add((brand, word, variant))
                            break
                    rows.append({"department": department, "journey": journey, "step": step, "kind": kind,
                                 "brand": brand, "tier": tier, "title": f"{brand} {word} {kind}, {variant}",
                                 "description": f"{TIER_PHRASES[tier]} {kind.lower()} for {USES[department]}. "
                                                f"Part of a {journey.lower()} setup; {variant.lower()} finish."})
    frame = pd.DataFrame(rows)
    ranks = rng.permutation(len(frame)) + 1
    frame["popularity"] = 1.0 / ranks ** cfg.zipf
    return frame


def make_synthetic(cfg: SyntheticConfig | None = None) -> RecDataset:
    """Generate the catalogue and user histories; the same config and seed give the same dataset."""
    cfg = cfg or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    catalogue = _catalogue(cfg, rng)
    departments = list(DEPARTMENTS)
    slots = list(zip(catalogue["journey"], catalogue["step"]))
    by_slot: dict[tuple[str, int], np.ndarray] = {}
    for index, slot in enumerate(slots):
        by_slot.setdefault(slot, []).append(index)
    by_slot = {slot: np.asarray(indices) for slot, indices in by_slot.items()}
    journeys_of = {d: list(DEPARTMENTS[d]) for d in departments}
    popularity = catalogue["popularity"].to_numpy()
    brands, tiers = catalogue["brand"].to_numpy(), catalogue["tier"].to_numpy()
    dept_of = catalogue["department"].to_numpy()

    users, items, times = [], [], []
    for user in range(cfg.users):
        favourites = rng.choice(len(departments), size=rng.integers(1, 3), replace=False)
        taste = [departments[i] for i in favourites]
        tier = TIERS[rng.integers(3)]
        length = cfg.min_length + rng.geometric(1.0 / max(cfg.mean_length - cfg.min_length + 1, 1.0)) - 1
        last_brand: dict[str, str] = {}
        seen: set[int] = set()
        journey, step = None, 0
        clock = 1_600_000_000 + int(rng.integers(0, 30_000_000))
        for _ in range(int(length)):
            move = rng.random()
            if journey is not None and move < cfg.p_next_in_journey and step + 1 < 5:
                step += 1
            elif journey is None or move < cfg.p_next_in_journey + cfg.p_new_journey:
                department = str(rng.choice(taste))
                journey, step = str(rng.choice(journeys_of[department])), int(rng.choice(5, p=[.6, .1, .1, .1, .1]))
            else:
                journey = None
            candidates = by_slot[(journey, step)] if journey is not None else np.arange(len(catalogue))
            weights = popularity[candidates].copy()
            if journey is not None:
                department = dept_of[candidates[0]]
                weights *= np.where(tiers[candidates] == tier, cfg.tier_match, 1.0)
                if department in last_brand:
                    weights *= np.where(brands[candidates] == last_brand[department], cfg.brand_loyalty, 1.0)
            weights[[i for i, c in enumerate(candidates) if c in seen]] = 0.0
            if weights.sum() == 0:
                continue
            choice = int(rng.choice(candidates, p=weights / weights.sum()))
            seen.add(choice)
            last_brand[dept_of[choice]] = brands[choice]
            clock += int(rng.integers(3_600, 30 * 86_400))
            users.append(f"user_{user:05d}")
            items.append(f"item_{choice:04d}")
            times.append(clock)

    records = [make_item(f"item_{i:04d}", title=row.title, description=row.description,
                         categories=[row.department, row.journey, row.kind], brand=row.brand)
               for i, row in enumerate(catalogue.itertuples())]
    interactions = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times})
    meta = {"format": "synthetic", "config": vars(cfg)}
    return RecDataset.from_records(records, interactions, "synthetic", meta)
