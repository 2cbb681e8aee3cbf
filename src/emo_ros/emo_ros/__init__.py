"""emo_ros: the ROS 2 node graph of the Emo coexpression stack.

One module per node, each a thin shell over its ``emo_core`` stage (see docs/ros.md). Modules that
need no ROS -- ``conversions``, ``parameters``, ``views``, ``remote``, ``babbling``, ``visual`` --
never import ``rclpy``, so they are tested (with rosbags' message types) where ROS 2 is absent.
"""
