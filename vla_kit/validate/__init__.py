"""The safety_validate stage: a policy through the safety layer on the simulated arm, over a battery.

:mod:`~vla_kit.validate.episode` runs one guarded episode (policy -> faults -> joint targets ->
:class:`~vla_kit.safety.SafetyLayer` -> :class:`~vla_kit.robots.sim_arm.SimArm`, every cycle);
:mod:`~vla_kit.validate.battery` runs the scenarios of :mod:`vla_kit.safety.scenarios`, judges
each episode independently of the layer (an audit of what the arm received, fault detection,
ISO/TS 15066 separation) and applies the gate; :mod:`~vla_kit.validate.stage` is what the
notebook calls. The safety layer itself never imports this package.
"""
