"""The simulation, MuJoCo only: the arm file and its checks, the scene, the running physics,
timing, collisions, the controllers that turn an action into actuator controls, rendering."""
