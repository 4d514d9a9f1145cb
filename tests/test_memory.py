import numpy as np
import pytest

from genrec.memory import peak_rss_mb, reset_peak


def test_the_peak_is_the_stage_own_after_a_reset():
    if not reset_peak():
        pytest.skip("this OS cannot reset the peak resident size")
    before = peak_rss_mb()
    block = np.ones(400 * 2**20 // 8)  # 400 MB, touched
    during = peak_rss_mb()
    assert during - before >= 380
    del block
    reset_peak()
    assert peak_rss_mb() < during - 300  # the freed block no longer counts
