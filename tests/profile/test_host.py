from vla_kit.profile.host import INFERENCE_FLAGS, host_info


def test_host_info_describes_this_machine():
    h = host_info()
    assert h.cpu_model and h.logical_cores >= 1 and h.memory_total_gib > 0
    assert set(h.inference_flags) <= set(INFERENCE_FLAGS)
    rows = dict(h.summary_rows())
    assert "CPU" in rows and "GPUs" in rows
    assert h.as_dict()["arch"] == h.arch
