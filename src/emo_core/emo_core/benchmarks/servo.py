"""``emo bench servo``: control-loop rate of the 26-servo driver vs the rate the bus allows.

One cycle is what :meth:`ServoDriver.step` puts on the wire: a Sync Write of 26 goal positions and
a Sync Read of current, velocity and position (10 bytes) from 26 servos. At 1 Mbps with 10 bits
per byte and Return_Delay_Time 0, those packets bound the loop rate; the ratio is the measured rate
over that bound. The emulator answers with bus timing (no packet leaves before a real bus could
deliver it) and runs in its own process, as the servos' own processors would; the driver is the
real one, through the real dynamixel_sdk and pyserial.

The loop is measured twice: as an ordinary process, and with SCHED_FIFO as a robot runs its control
loop (ros2_control does the same). On a shared 2-core machine the first mostly measures how long the
scheduler keeps a woken process waiting; the second measures the driver. Both are reported; the
ratio is the second (falling back to ordinary scheduling where real-time is not permitted).
"""
from __future__ import annotations

import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ..servo.driver import DriverConfig, ServoDriver, release_realtime, request_realtime
from ..servo.emulator import BusEmulator
from ..servo.protocol import byte_time_s, read_status_size, sync_read_size, sync_write_size
from ..servo.table import ServoTable
from .timing import BenchResult

NAME = "servo"
RT_PRIORITY = 50
BLOCK_BYTES = 10            # Present_Current (2) + Present_Velocity (4) + Present_Position (4)


def bus_limit_hz(n_servos: int, baudrate: int, return_delay_s: float = 0.0) -> tuple[float, int]:
    """The loop rate the packets allow, and the bytes of one cycle."""
    cycle_bytes = (sync_write_size(n_servos, 4) + sync_read_size(n_servos)
                   + n_servos * read_status_size(BLOCK_BYTES))
    return 1.0 / (cycle_bytes * byte_time_s(baudrate) + n_servos * return_delay_s), cycle_bytes


def _serve(link: str, baudrate: int, priority: int, conn) -> None:
    """Child process: the emulated bus, until told to stop; then report what went over the wire.
    It stands in for the servos' own processors, so it asks for real-time scheduling."""
    request_realtime(priority)
    table = ServoTable.load()
    with BusEmulator.from_table(table, link=link, baudrate=baudrate, timing=True) as emu:
        conn.send("ready")
        conn.recv()
        stats = emu.stats
        conn.send({"bytes": stats.bytes_in + stats.bytes_out, "instructions": stats.instructions,
                   "sync_reads": stats.sync_reads, "lateness_s": list(stats.lateness_s)})


def _measure(driver: ServoDriver, cycles: int) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(0)
    durations = np.empty(cycles)
    cpu0 = time.thread_time()
    for i in range(cycles):
        if i % 4 == 0:
            driver.command(rng.random(11))          # a face that keeps moving, like a live stream
        t0 = time.perf_counter()
        state = driver.step()
        durations[i] = time.perf_counter() - t0
        if state.fault:
            raise RuntimeError(f"servo benchmark: {state.fault}")
    return durations, (time.thread_time() - cpu0) / cycles


def run(quick: bool = False) -> BenchResult:
    table = ServoTable.load()
    baudrate = 1_000_000
    cycles = 300 if quick else 2000
    limit_hz, cycle_bytes = bus_limit_hz(len(table), baudrate)
    config = DriverConfig.from_mapping(table.driver, baudrate=baudrate, watchdog_timeout_s=0,
                                       status_poll_interval_s=1e9)     # the cycle alone: write + read
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="emo-bench-servo-") as tmp:
        link = str(Path(tmp) / "bus")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(link, baudrate, RT_PRIORITY + 1, child), daemon=True)
        proc.start()
        try:
            if not parent.poll(60) or parent.recv() != "ready":
                raise RuntimeError("servo benchmark: the emulator process did not start")
            driver = ServoDriver(table, link, config)
            driver.open()
            driver.activate()
            _measure(driver, 50)                                      # warm-up
            # First as an ordinary process, then as a robot runs its control loop: SCHED_FIFO.
            default, _ = _measure(driver, cycles)
            policy = request_realtime(RT_PRIORITY)
            try:
                before = driver.bus.stats.retries
                durations, cpu_per_cycle = _measure(driver, cycles)
                retries = driver.bus.stats.retries - before
            finally:
                release_realtime()
            driver.shutdown()
            parent.send("stop")
            wire = parent.recv() if parent.poll(30) else {}
        finally:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    loop_hz = cycles / float(durations.sum())
    default_hz = cycles / float(default.sum())
    lateness = wire.get("lateness_s") or [0.0]
    figures = {
        "servos": len(table),
        "baudrate": baudrate,
        "cycle_bytes": cycle_bytes,
        "bus_time_per_cycle_ms": 1e3 / limit_hz,
        "bus_limit_hz": limit_hz,
        "scheduling": policy,
        "loop_hz": loop_hz,
        "cycle_ms": {"p50": float(np.percentile(durations, 50) * 1e3),
                     "p99": float(np.percentile(durations, 99) * 1e3)},
        "loop_hz_default_scheduling": default_hz,
        "ratio_default_scheduling": default_hz / limit_hz,
        "driver_cpu_ms_per_cycle": cpu_per_cycle * 1e3,
        "emulator_last_packet_late_us_p50": statistics.median(lateness) * 1e6,
        "retries": retries,
        "cycles": cycles,
    }
    return BenchResult(figures=figures, ratios={"servo_loop_vs_bus_limit": loop_hz / limit_hz})
