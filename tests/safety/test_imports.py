"""The safety layer stands alone: importing it pulls in no simulator, no ML framework, no notebook tooling."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "pybullet", "pybullet_data", "onnx", "onnxruntime", "papermill", "nbformat", "jupyter_client", "pandas")


def test_importing_the_safety_layer_loads_only_numpy_and_pydantic():
    code = "import sys, vla_kit.safety, vla_kit.robots; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not set(HEAVY) & set(out), set(HEAVY) & set(out)
    loaded = subprocess.run([sys.executable, "-c", "import sys, vla_kit.safety; print(' '.join(sorted(m for m in sys.modules "
                             "if m.startswith('vla_kit'))))"], capture_output=True, text=True, check=True).stdout.split()
    assert all(m.split(".")[1] in ("errors", "registry", "robots", "safety") for m in loaded if "." in m), loaded
