"""Read a serial chain (origins, axes, limits) out of a URDF file with ``xml.etree``.

Only what the kinematics needs is read: for every joint from the root link to a tip link, its
type, ``<origin xyz rpy>``, ``<axis>``, ``<limit>`` and ``<safety_controller>`` soft limits. The
built-in Panda model hard-codes the same numbers (so a deployment needs no URDF on disk) and a
test checks them against ``pybullet_data/franka_panda/panda.urdf`` with this parser.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from vla_kit.errors import ArtifactError

__all__ = ["UrdfJoint", "read_chain"]


@dataclass(frozen=True)
class UrdfJoint:
    """One ``<joint>`` on the chain.

    Attributes:
        name: joint name. kind: ``revolute``, ``continuous``, ``prismatic`` or ``fixed``.
        parent, child: link names.
        xyz (m), rpy (rad): the joint origin relative to the parent link frame.
        axis: joint axis in the joint frame.
        lower, upper (rad), velocity (rad/s), effort (N m): the ``<limit>``; ``None`` when absent.
        soft_lower, soft_upper: ``<safety_controller>`` limits (rad); ``None`` when absent.
    """

    name: str
    kind: str
    parent: str
    child: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    axis: tuple[float, float, float]
    lower: float | None
    upper: float | None
    velocity: float | None
    effort: float | None
    soft_lower: float | None
    soft_upper: float | None


def _floats(text: str | None, default: tuple[float, float, float], where: str, path: Path) -> tuple[float, float, float]:
    if text is None:
        return default
    parts = text.split()
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ArtifactError(path, f"{where}: expected three numbers, got {text!r}") from None
    if len(values) != 3:
        raise ArtifactError(path, f"{where}: expected three numbers, got {text!r}")
    return values  # type: ignore[return-value]


def _opt(elem: ET.Element | None, attr: str) -> float | None:
    if elem is None or elem.get(attr) is None:
        return None
    return float(elem.get(attr))  # type: ignore[arg-type]


def read_chain(path: str | Path, tip_link: str) -> list[UrdfJoint]:
    """The joints from the URDF's root link to ``tip_link``, root first.

    Args:
        path: the ``.urdf`` file.
        tip_link: name of the last link of the chain (e.g. ``"panda_grasptarget"``).

    Returns:
        One :class:`UrdfJoint` per joint on the path, fixed joints included.

    Raises:
        ArtifactError: the file cannot be parsed or ``tip_link`` is not reachable.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ArtifactError(path, f"cannot read URDF: {exc}") from None
    by_child: dict[str, UrdfJoint] = {}
    for j in root.iter("joint"):
        name = j.get("name", "?")
        parent, child = j.find("parent"), j.find("child")
        if parent is None or child is None:
            raise ArtifactError(path, f"joint {name!r} has no parent or child")
        origin, axis = j.find("origin"), j.find("axis")
        limit, soft = j.find("limit"), j.find("safety_controller")
        by_child[child.get("link", "")] = UrdfJoint(
            name=name,
            kind=j.get("type", ""),
            parent=parent.get("link", ""),
            child=child.get("link", ""),
            xyz=_floats(origin.get("xyz") if origin is not None else None, (0.0, 0.0, 0.0), f"{name}.origin.xyz", path),
            rpy=_floats(origin.get("rpy") if origin is not None else None, (0.0, 0.0, 0.0), f"{name}.origin.rpy", path),
            axis=_floats(axis.get("xyz") if axis is not None else None, (1.0, 0.0, 0.0), f"{name}.axis", path),
            lower=_opt(limit, "lower"),
            upper=_opt(limit, "upper"),
            velocity=_opt(limit, "velocity"),
            effort=_opt(limit, "effort"),
            soft_lower=_opt(soft, "soft_lower_limit"),
            soft_upper=_opt(soft, "soft_upper_limit"),
        )
    chain: list[UrdfJoint] = []
    link = tip_link
    while link in by_child:
        joint = by_child[link]
        chain.append(joint)
        link = joint.parent
        if len(chain) > len(by_child):
            raise ArtifactError(path, "the joint graph has a cycle")
    if not chain:
        raise ArtifactError(path, f"no joint leads to link {tip_link!r}")
    return chain[::-1]
