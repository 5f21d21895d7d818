"""Simulated fleet world: the Robot protocol, the episode loop, Meta-World and fake suites,
deployment shift, scripted experts and interveners.

Import from the submodules (``lwd.envs.suites.make_robot``, ``lwd.envs.episode_loop.run_episode``, ...);
this package imports nothing on purpose (Meta-World/MuJoCo are loaded only when a robot is built).
"""
