from __future__ import annotations

import numpy as np
import pytest

from vla_kit.errors import RegistryError
from vla_kit.profile.platforms import PRECISIONS, comparison_table, get_platform, load_catalogue, roofline

REQUIRED = {"jetson-agx-orin-64gb", "jetson-orin-nano-8gb", "jetson-xavier-nx", "raspberry-pi-5", "x86-cpu", "desktop-gpu"}


def test_catalogue_has_the_edge_platforms_with_sane_figures():
    plats = {p.key: p for p in load_catalogue()}
    assert REQUIRED <= set(plats)
    for p in plats.values():
        assert p.power_w_min <= p.power_w_max and p.source and p.peak_basis
        for attr, _ in PRECISIONS.values():
            v = getattr(p, attr)
            assert v is None or v >= p.fp32_gflops * 0.99 or attr == "fp32_gflops", (p.key, attr)


def test_unknown_platform_lists_the_keys():
    with pytest.raises(RegistryError, match="raspberry-pi-5"):
        get_platform("pdp-11")


def test_comparison_puts_measured_rows_first_with_ratios():
    df = comparison_table({"host": {"fp32_gflops": 100.0, "mem_bw_gbs": 20.0}}, ["raspberry-pi-5", "x86-cpu"])
    assert list(df["key"]) == ["host", "raspberry-pi-5", "x86-cpu"]
    assert df.loc[0, "fp32 × host"] == 1.0
    assert df.loc[1, "fp32 × host"] == pytest.approx(1.536)


def test_roofline_is_bandwidth_bound_left_of_the_ridge_and_flat_right_of_it():
    ai = np.array([0.1, 1.0, 10.0, 100.0])
    assert roofline(100.0, 20.0, ai).tolist() == [2.0, 20.0, 100.0, 100.0]
