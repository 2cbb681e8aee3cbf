"""Emo coexpression core: every pipeline stage as a plain Python class, with no ROS import.

ROS 2 nodes in ``emo_ros`` are thin shells over these classes; the in-process pipeline, the ``emo``
command line and the tests use the very same classes.
"""

__version__ = "0.1.0"
