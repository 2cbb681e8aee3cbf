"""emo_ros: the ROS 2 node graph of the Emo coexpression stack.

One module per node, each a thin shell over its ``emo_core`` stage (see docs/ros.md), and what the
nodes share: ``runtime`` (executors, QoS, message classes, image codec) and ``parameters`` (the
schemas; no ``rclpy`` import, so it is tested where ROS 2 is absent). Messages are built and read by
``emo_core.conversions``, the layer bag reading uses too.
"""
