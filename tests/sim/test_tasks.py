"""Task registry and success predicates, judged on hand-built simulator states."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from vla_kit.errors import InputError, RegistryError
from vla_kit.sim.layout import COLOURS, CUBE_HALF_EXTENT
from vla_kit.sim.state import SimState, closest_colour, distance_to_cube
from vla_kit.sim.tasks import (
    LIFT_HEIGHT,
    PUSH_DISTANCE,
    REACH_TOLERANCE,
    PickTask,
    TaskSpec,
    get_task,
    register_task,
    task_names,
)

IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])
REST = {
    "red": np.array([0.45, -0.10, CUBE_HALF_EXTENT]),
    "green": np.array([0.55, 0.10, CUBE_HALF_EXTENT]),
    "blue": np.array([0.38, 0.15, CUBE_HALF_EXTENT]),
    "yellow": np.array([0.62, -0.15, CUBE_HALF_EXTENT]),
}


def make_state(ee: np.ndarray, *, opening: float = 0.08, moved: dict[str, np.ndarray] | None = None) -> SimState:
    cubes = {**REST, **(moved or {})}
    return SimState(
        ee_position=np.asarray(ee, dtype=float),
        ee_orientation=np.array([1.0, 0.0, 0.0, 0.0]),
        finger_opening=opening,
        joint_positions=np.zeros(7),
        joint_velocities=np.zeros(7),
        cube_positions=cubes,
        cube_orientations={c: IDENTITY for c in cubes},
        initial_cube_positions=REST,
    )


def spec(task: str, colour: str = "red", variant: str = "") -> TaskSpec:
    return TaskSpec(task, colour, variant, f"{task} the {colour} cube {variant}")


def above(colour: str, height: float) -> np.ndarray:
    return REST[colour] + np.array([0.0, 0.0, CUBE_HALF_EXTENT + height])


# -- registry ------------------------------------------------------------------------------------


def test_builtin_families_are_registered() -> None:
    assert {"reach", "pick", "push"} <= set(task_names())
    assert get_task("pick").name == "pick"


def test_unknown_task_raises_registry_error_listing_names() -> None:
    with pytest.raises(RegistryError) as info:
        get_task("juggle")
    assert info.value.available == sorted(task_names())
    assert "pick, push, reach" in str(info.value)


def test_registering_a_taken_name_is_rejected() -> None:
    with pytest.raises(RegistryError, match="already registered"):
        register_task(PickTask())
    assert task_names().count("pick") == 1


# -- instructions --------------------------------------------------------------------------------


def test_instruction_names_the_colour_and_is_chosen_by_the_generator() -> None:
    task = get_task("pick")
    a = task.make_spec("green", np.random.default_rng(4))
    b = task.make_spec("green", np.random.default_rng(4))
    assert a == b and "green" in a.instruction
    wordings = {task.make_spec("green", np.random.default_rng(s)).instruction for s in range(40)}
    assert len(wordings) > 1


def test_instruction_wording_does_not_depend_on_the_colour() -> None:
    task = get_task("reach")
    red = task.make_spec("red", np.random.default_rng(9)).instruction
    blue = task.make_spec("blue", np.random.default_rng(9)).instruction
    assert red.replace("red", "blue") == blue


def test_push_spec_names_a_direction() -> None:
    specs = [get_task("push").make_spec("yellow", np.random.default_rng(s)) for s in range(30)]
    assert {s.variant for s in specs} == {"left", "right"}
    assert all(s.variant in s.instruction for s in specs)


def test_unknown_colour_in_a_spec_is_an_input_error() -> None:
    with pytest.raises(InputError, match="colour"):
        get_task("reach").make_spec("purple", np.random.default_rng(0))


def test_a_task_refuses_to_judge_another_familys_spec() -> None:
    with pytest.raises(InputError, match="cannot judge"):
        get_task("reach").success(make_state(above("red", 0.01)), spec("pick"))


# -- reach ---------------------------------------------------------------------------------------


def test_reach_succeeds_just_above_the_target() -> None:
    assert get_task("reach").success(make_state(above("red", 0.012)), spec("reach"))


def test_reach_fails_high_above_the_target() -> None:
    assert not get_task("reach").success(make_state(above("red", 0.10)), spec("reach"))


def test_reach_fails_when_touching_a_distractor_instead() -> None:
    state = make_state(above("green", 0.005))
    assert not get_task("reach").success(state, spec("reach", "red"))
    assert get_task("reach").success(state, spec("reach", "green"))


def test_reach_tolerance_is_measured_to_the_cube_surface() -> None:
    assert get_task("reach").success(make_state(above("red", REACH_TOLERANCE - 1e-4)), spec("reach"))
    assert not get_task("reach").success(make_state(above("red", REACH_TOLERANCE + 1e-4)), spec("reach"))


# -- pick ----------------------------------------------------------------------------------------


def lifted(colour: str, height: float) -> dict[str, np.ndarray]:
    return {colour: REST[colour] + np.array([0.0, 0.0, height])}


def test_pick_succeeds_with_the_cube_held_high() -> None:
    cube = REST["red"] + np.array([0.0, 0.0, LIFT_HEIGHT + 0.02])
    assert get_task("pick").success(make_state(cube, opening=0.04, moved={"red": cube}), spec("pick"))


def test_pick_fails_when_the_held_cube_is_still_low() -> None:
    cube = REST["red"] + np.array([0.0, 0.0, LIFT_HEIGHT / 2])
    assert not get_task("pick").success(make_state(cube, opening=0.04, moved={"red": cube}), spec("pick"))


def test_pick_fails_for_a_cube_in_the_air_but_not_between_closed_fingers() -> None:
    cube = REST["red"] + np.array([0.0, 0.0, LIFT_HEIGHT + 0.02])
    wide_open = make_state(cube, opening=0.08, moved={"red": cube})
    far_away = make_state(cube + np.array([0.0, 0.0, 0.10]), opening=0.04, moved={"red": cube})
    assert not get_task("pick").success(wide_open, spec("pick"))
    assert not get_task("pick").success(far_away, spec("pick"))


def test_pick_fails_when_a_distractor_is_lifted() -> None:
    cube = REST["blue"] + np.array([0.0, 0.0, LIFT_HEIGHT + 0.02])
    assert not get_task("pick").success(make_state(cube, opening=0.04, moved={"blue": cube}), spec("pick", "red"))


# -- push ----------------------------------------------------------------------------------------


def pushed(dy: float, dz: float = 0.0) -> dict[str, np.ndarray]:
    return {"red": REST["red"] + np.array([0.0, dy, dz])}


def test_push_succeeds_when_the_cube_slid_far_enough_the_named_way() -> None:
    ee = above("red", 0.1)
    assert get_task("push").success(make_state(ee, moved=pushed(+PUSH_DISTANCE + 0.01)), spec("push", variant="left"))
    assert get_task("push").success(make_state(ee, moved=pushed(-PUSH_DISTANCE - 0.01)), spec("push", variant="right"))


def test_push_fails_the_wrong_way_or_not_far_enough() -> None:
    ee = above("red", 0.1)
    assert not get_task("push").success(make_state(ee, moved=pushed(-0.10)), spec("push", variant="left"))
    assert not get_task("push").success(make_state(ee, moved=pushed(PUSH_DISTANCE / 2)), spec("push", variant="left"))


def test_push_fails_when_the_cube_was_carried_instead_of_slid() -> None:
    state = make_state(above("red", 0.1), moved=pushed(0.10, dz=0.05))
    assert not get_task("push").success(state, spec("push", variant="left"))


# -- which cube is closest -------------------------------------------------------------------------


@pytest.mark.parametrize("colour", COLOURS)
def test_closest_colour_names_the_cube_under_the_gripper(colour: str) -> None:
    assert closest_colour(make_state(above(colour, 0.03))) == colour


def test_distance_to_an_absent_cube_is_an_input_error() -> None:
    state = make_state(above("red", 0.03))
    state = replace(state, cube_positions={"red": REST["red"]}, cube_orientations={"red": IDENTITY})
    with pytest.raises(InputError, match="no 'blue' cube"):
        distance_to_cube(state, "blue")
