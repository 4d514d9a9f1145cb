import itertools

import numpy as np
import pytest
import torch

from semid.collisions import collision_rate, make_unique, sinkhorn, uniform_mapping


def test_collision_rate_by_hand():
    codes = np.array([[0, 1], [0, 1], [0, 1], [2, 3]])
    assert collision_rate(codes) == pytest.approx(1 - 2 / 4)


def test_sinkhorn_spreads_items_that_all_prefer_one_code():
    # four items, all nearest to code 0; Sinkhorn must give each a different code
    base = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    cost = base + torch.tensor([[0.0], [0.1], [0.2], [0.3]]) * base
    plan = sinkhorn(cost, epsilon=0.05, iters=200)
    assert sorted(plan.argmax(1).tolist()) == [0, 1, 2, 3]
    assert torch.allclose(plan.sum(0) / plan.sum(), torch.full((4,), 0.25, dtype=plan.dtype), atol=1e-3)


def test_uniform_mapping_only_touches_colliding_items():
    codes = np.array([[0, 0], [0, 0], [1, 2]])
    dist = np.array([[0.0, 1.0, 2.0], [0.0, 1.5, 2.0], [5.0, 5.0, 0.0]])
    mapped = uniform_mapping(codes, dist, epsilon=0.05)
    assert collision_rate(mapped) == 0.0 and list(mapped[2]) == [1, 2]


def _brute_force_cost(dist):
    n, k = dist.shape
    return min(sum(dist[i, c] for i, c in enumerate(p)) for p in itertools.permutations(range(k), n))


@pytest.mark.parametrize("seed", range(5))
def test_make_unique_is_the_optimal_assignment_per_prefix(seed):
    rng = np.random.default_rng(seed)
    codes = np.column_stack([rng.integers(0, 2, 12), rng.integers(0, 4, 12)])
    dist = rng.random((12, 4))
    # make groups fit: at most 4 items per prefix
    codes[:, 0] = np.arange(12) % 3
    unique = make_unique(codes, dist)
    assert unique.shape == (12, 2) and collision_rate(unique) == 0.0
    assert (unique[:, 0] == codes[:, 0]).all()  # prefixes never change
    for prefix in range(3):
        rows = np.flatnonzero(codes[:, 0] == prefix)
        chosen = dist[rows, unique[rows, 1]].sum()
        assert chosen == pytest.approx(_brute_force_cost(dist[rows]))


def test_items_without_collision_keep_their_codes():
    codes = np.array([[0, 1, 2], [0, 1, 3], [1, 1, 2]])
    dist = np.random.default_rng(0).random((3, 4))
    dist[np.arange(3), codes[:, -1]] = 0.0
    assert (make_unique(codes, dist) == codes).all()


def test_adversarial_identical_items_overflow_into_an_extra_level():
    n, k = 1000, 8
    codes = np.zeros((n, 3), dtype=np.int64)  # every item identical: one prefix, one code
    dist = np.tile(np.linspace(0, 1, k), (n, 1))
    unique = make_unique(codes, dist)
    assert unique.shape == (n, 4) and collision_rate(unique) == 0.0
    assert np.bincount(unique[:, 2], minlength=k).max() == -(-n // k)  # spread evenly: 125 per last code
    assert unique[:, 3].max() == -(-n // k) - 1


def test_deterministic():
    rng = np.random.default_rng(3)
    codes, dist = rng.integers(0, 3, (300, 3)), rng.random((300, 3))
    assert (make_unique(codes, dist) == make_unique(codes.copy(), dist.copy())).all()
