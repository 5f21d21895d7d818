"""Simulated fleet world: the Robot protocol, the episode loop, the Meta-World (``mw8``), OGBench scene
(``scene8``, chained tasks with sub-step scores: ``scene_tasks``, ``scene_robot``) and fake suites,
deployment shift, scripted experts and interveners.

Import from the submodules (``lwd.envs.suites.make_robot``, ``lwd.envs.episode_loop.run_episode``, ...);
this package imports nothing on purpose (Meta-World, OGBench and MuJoCo are loaded only when a robot is built).
"""
