#!/bin/bash
# Source ROS 2 Jazzy and the Emo workspace, then run the given command.
set -e
# setup.bash files read unset variables; do not run them under `set -u`.
source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
source "${EMO_WS:-/opt/emo}/install/setup.bash"
exec "$@"
