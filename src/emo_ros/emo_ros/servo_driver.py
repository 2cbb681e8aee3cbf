"""``servo_driver``: FaceCommand -> the 26 Dynamixel servos, JointState and diagnostics back.

A lifecycle node over ``emo_core.servo.ServoDriver`` (which does the planning, safety limits,
watchdog and reconnection):

* *configure* loads the servo table and opens the port (retrying for ``connect_timeout_s``), checks
  every servo and writes its safety registers -- a missing port fails the transition;
* *activate* turns torque on, holding the present pose, and starts the control loop;
* *deactivate* eases the face home and turns torque off; *cleanup* closes the port;
* Ctrl-C (or shutdown) homes and releases torque too (``release()``, after spinning stops).

``execute_at`` of a command becomes the driver's ``arrive_at``: the face reaches the predicted apex
then (minus the servo lag model). The node clock drives the driver, so that time and the camera
stamps are on one clock.

Subscribes ``face/command``. Publishes ``joint_states`` (sensor_msgs/JointState: rad from the
centre tick, rad/s, effort = motor current in A) and ``/diagnostics`` (diagnostic_msgs/DiagnosticArray).
"""
from __future__ import annotations

from typing import Any

from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from emo_core.conversions import (command_mapping, diagnostics_to_msg, make_header, servo_state_to_joint_state,
                                  stamp_to_seconds)
from emo_core.errors import EmoError
from emo_core.pacing import retry
from emo_core.servo import DriverConfig, ServoDriver, ServoState, ServoTable

from .parameters import SCHEMAS, declare
from .runtime import RELIABLE_QOS, RosClock, message_types, run

PARAMETERS = SCHEMAS["servo_driver"]
RETRY_S = 0.25


class ServoDriverNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("servo_driver", **kwargs)
        self.params = declare(self, PARAMETERS)
        self.types = message_types()
        self.core_clock = RosClock(self)
        self.driver: ServoDriver | None = None
        self.last_state: ServoState | None = None
        self.joint_pub = self.diag_pub = self.command_sub = None
        self._loop_timers: list[Any] = []

    # -- lifecycle ------------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.driver = self._open_driver()
        except EmoError as exc:
            self.get_logger().error(f"cannot configure the servo bus: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.joint_pub = self.create_lifecycle_publisher(self.types.cls("sensor_msgs/msg/JointState"),
                                                         "joint_states", RELIABLE_QOS)
        self.diag_pub = self.create_lifecycle_publisher(self.types.cls("diagnostic_msgs/msg/DiagnosticArray"),
                                                        "/diagnostics", RELIABLE_QOS)
        self.command_sub = self.create_subscription(self.types.cls("emo_msgs/msg/FaceCommand"), "face/command",
                                                    self.on_command, RELIABLE_QOS)
        self.get_logger().info(f"{len(self.driver.table)} servos on {self.params['port']}")
        return super().on_configure(state)

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        try:
            self.driver.activate()
        except EmoError as exc:
            self.get_logger().error(f"cannot turn torque on: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._loop_timers = [self.create_timer(1.0 / self.params["control_rate_hz"], self.on_cycle),
                        self.create_timer(1.0 / self.params["diagnostics_rate_hz"], self.on_diagnostics)]
        self.get_logger().info("torque on")
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_timers()
        self.driver.deactivate()
        self.get_logger().info("face home, torque off")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._stop_timers()
        if self.driver is not None:
            self.driver.close()
            self.driver = None
        self.destroy_subscription(self.command_sub)
        self.destroy_lifecycle_publisher(self.joint_pub)
        self.destroy_lifecycle_publisher(self.diag_pub)
        self.joint_pub = self.diag_pub = self.command_sub = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Home, torque off, close: also after Ctrl-C, when ROS callbacks no longer run. Stopped by
        a signal (``runtime.run`` sets ``stopped_by_signal``), the homing is the quick one
        (``stop_timeout_s``), as in the emo CLI."""
        self._stop_timers()
        if self.driver is not None:
            self.driver.shutdown(interrupted=getattr(self, "stopped_by_signal", False))
            self.driver = None

    # -- callbacks ------------------------------------------------------------------------------
    def on_command(self, msg: Any) -> None:
        if self.driver is None or not self.driver.active:
            self.get_logger().warning("command ignored: the driver is not active", throttle_duration_sec=5.0)
            return
        at = stamp_to_seconds(msg.execute_at)
        arrive_at = at if (self.params["use_execute_at"] and at > 0.0) else None
        try:
            self.driver.command(command_mapping(msg), arrive_at=arrive_at)
        except EmoError as exc:
            self.get_logger().warning(f"command rejected: {exc}", throttle_duration_sec=2.0)

    def on_cycle(self) -> None:
        self.last_state = self.driver.step(self.core_clock.now())
        header = make_header(self.types, self.get_clock().now().to_msg())
        self.joint_pub.publish(servo_state_to_joint_state(self.types, self.last_state, header))

    def on_diagnostics(self) -> None:
        if self.last_state is None:
            return
        header = make_header(self.types, self.get_clock().now().to_msg())
        self.diag_pub.publish(diagnostics_to_msg(self.types, self.last_state.diagnostics(), header,
                                                 prefix=f"{self.get_name()}: "))

    # -- helpers --------------------------------------------------------------------------------
    def _open_driver(self) -> ServoDriver:
        p = self.params
        table = ServoTable.load(p["servo_config"] or None)
        config = DriverConfig.from_mapping(table.driver, baudrate=table.baudrate,
                                           control_period_s=1.0 / p["control_rate_hz"])

        def attempt() -> ServoDriver:
            driver = ServoDriver(table, p["port"], config, clock=self.core_clock)
            try:
                driver.open()
            except EmoError:
                driver.close()
                raise
            return driver

        # The port may not exist yet (a USB adapter, the emulator starting).
        return retry(attempt, p["connect_timeout_s"], RETRY_S)

    def _stop_timers(self) -> None:
        for timer in self._loop_timers:
            self.destroy_timer(timer)
        self._loop_timers = []


def main(args: list[str] | None = None) -> int:
    return run(ServoDriverNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
