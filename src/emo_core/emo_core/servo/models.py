"""Dynamixel X-series control tables as data (Protocol 2.0).

Only the registers this project touches are listed, with the addresses, sizes, access and initial
values of the ROBOTIS e-Manual control tables (XL330-M288-T, XM430-W350-T/R). The driver looks every
register up here by name, and the emulator builds its memory map from the same data, so a new model
is one more :class:`ModelSpec` entry, not new code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import ConfigError

#: First RAM address; EEPROM registers (below it) can only be written with torque off.
EEPROM_END = 64

#: Operating_Mode (address 11) values; the driver runs every face servo in position control.
OPERATING_MODE_CURRENT = 0
OPERATING_MODE_VELOCITY = 1
OPERATING_MODE_POSITION = 3
OPERATING_MODE_EXTENDED_POSITION = 4
OPERATING_MODE_PWM = 16
#: Status_Return_Level (address 68): which instructions a servo answers with a status packet.
STATUS_RETURN_PING_ONLY = 0
STATUS_RETURN_READ = 1          # ping and reads
STATUS_RETURN_ALL = 2           # every instruction (the factory default; the driver insists on it)


@dataclass(frozen=True)
class Register:
    """One control-table entry."""

    name: str
    address: int
    size: int
    access: str = "RW"          # "R" or "RW"
    initial: int = 0
    signed: bool = False

    @property
    def end(self) -> int:
        return self.address + self.size

    @property
    def eeprom(self) -> bool:
        return self.address < EEPROM_END

    def encode(self, value: int) -> bytes:
        """Little-endian bytes of ``value`` (two's complement for signed registers)."""
        value = int(value)
        lo, hi = (-(1 << (8 * self.size - 1)), (1 << (8 * self.size - 1)) - 1) if self.signed \
            else (0, (1 << (8 * self.size)) - 1)
        if not lo <= value <= hi:
            raise ValueError(f"{self.name}: value {value} does not fit {self.size} byte(s)")
        return value.to_bytes(self.size, "little", signed=self.signed)

    def decode(self, data: bytes | bytearray | memoryview) -> int:
        return int.from_bytes(bytes(data[:self.size]), "little", signed=self.signed)


def _x_series_registers(*, current_limit: int, velocity_limit: int, temperature_limit: int,
                        max_voltage: int, min_voltage: int, model_number: int) -> tuple[Register, ...]:
    """The X-series (Protocol 2.0) control table shared by XL330, XC330, XM430, XH430, ..."""
    r = Register
    return (
        r("Model_Number", 0, 2, "R", model_number),
        r("Model_Information", 2, 4, "R", 0),
        r("Firmware_Version", 6, 1, "R", 52),
        r("ID", 7, 1, "RW", 1),
        r("Baud_Rate", 8, 1, "RW", 1),
        r("Return_Delay_Time", 9, 1, "RW", 250),
        r("Drive_Mode", 10, 1, "RW", 0),
        r("Operating_Mode", 11, 1, "RW", OPERATING_MODE_POSITION),
        r("Secondary_ID", 12, 1, "RW", 255),
        r("Protocol_Type", 13, 1, "RW", 2),
        r("Homing_Offset", 20, 4, "RW", 0, signed=True),
        r("Moving_Threshold", 24, 4, "RW", 10),
        r("Temperature_Limit", 31, 1, "RW", temperature_limit),
        r("Max_Voltage_Limit", 32, 2, "RW", max_voltage),
        r("Min_Voltage_Limit", 34, 2, "RW", min_voltage),
        r("PWM_Limit", 36, 2, "RW", 885),
        r("Current_Limit", 38, 2, "RW", current_limit),
        r("Velocity_Limit", 44, 4, "RW", velocity_limit),
        r("Max_Position_Limit", 48, 4, "RW", 4095),
        r("Min_Position_Limit", 52, 4, "RW", 0),
        r("Shutdown", 63, 1, "RW", 0b110100),   # overload | electrical shock | overheating
        r("Torque_Enable", 64, 1, "RW", 0),
        r("LED", 65, 1, "RW", 0),
        r("Status_Return_Level", 68, 1, "RW", STATUS_RETURN_ALL),
        r("Registered_Instruction", 69, 1, "R", 0),
        r("Hardware_Error_Status", 70, 1, "R", 0),
        r("Position_D_Gain", 80, 2, "RW", 0),
        r("Position_I_Gain", 82, 2, "RW", 0),
        r("Position_P_Gain", 84, 2, "RW", 800),
        r("Bus_Watchdog", 98, 1, "RW", 0),
        r("Goal_PWM", 100, 2, "RW", 885, signed=True),
        r("Goal_Current", 102, 2, "RW", current_limit, signed=True),
        r("Goal_Velocity", 104, 4, "RW", 0, signed=True),
        r("Profile_Acceleration", 108, 4, "RW", 0),
        r("Profile_Velocity", 112, 4, "RW", 0),
        r("Goal_Position", 116, 4, "RW", 2048, signed=True),
        r("Realtime_Tick", 120, 2, "R", 0),
        r("Moving", 122, 1, "R", 0),
        r("Moving_Status", 123, 1, "R", 0),
        r("Present_PWM", 124, 2, "R", 0, signed=True),
        r("Present_Current", 126, 2, "R", 0, signed=True),
        r("Present_Velocity", 128, 4, "R", 0, signed=True),
        r("Present_Position", 132, 4, "R", 2048, signed=True),
        r("Velocity_Trajectory", 136, 4, "R", 0, signed=True),
        r("Position_Trajectory", 140, 4, "R", 0, signed=True),
        r("Present_Input_Voltage", 144, 2, "R", 0),
        r("Present_Temperature", 146, 1, "R", 28),
    )


@dataclass(frozen=True)
class ModelSpec:
    """A servo model: its control table plus the unit conversions the driver needs."""

    name: str
    model_number: int
    registers: tuple[Register, ...]
    position_max: int = 4095                 # ticks per revolution - 1
    current_unit_a: float = 0.001            # Present_Current LSB in amperes
    velocity_unit_rpm: float = 0.229         # Present_Velocity / Profile_Velocity LSB
    no_load_speed_rpm: float = 100.0         # used by the emulator as the physical speed cap
    _by_name: dict[str, Register] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {r.name: r for r in self.registers})

    def reg(self, name: str) -> Register:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(f"model {self.name} has no register {name!r}") from None

    def register_at(self, address: int) -> Register | None:
        for r in self.registers:
            if r.address <= address < r.end:
                return r
        return None

    @property
    def ticks_per_rad(self) -> float:
        return (self.position_max + 1) / (2 * math.pi)

    @property
    def center_ticks(self) -> int:
        return (self.position_max + 1) // 2

    def ticks_per_s(self, velocity_units: float) -> float:
        """Velocity register units (0.229 rpm) to ticks per second."""
        return velocity_units * self.velocity_unit_rpm / 60.0 * (self.position_max + 1)

    def velocity_units(self, ticks_per_s: float) -> int:
        """Ticks per second to velocity register units (rounded up so the limit is never lower)."""
        return max(1, math.ceil(ticks_per_s * 60.0 / (self.velocity_unit_rpm * (self.position_max + 1))))


MODELS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (
        ModelSpec("XL330-M288", 1200,
                  _x_series_registers(current_limit=1750, velocity_limit=445, temperature_limit=70,
                                      max_voltage=70, min_voltage=35, model_number=1200),
                  current_unit_a=0.001, no_load_speed_rpm=103.0),
        ModelSpec("XM430-W350", 1020,
                  _x_series_registers(current_limit=1193, velocity_limit=200, temperature_limit=80,
                                      max_voltage=160, min_voltage=95, model_number=1020),
                  current_unit_a=0.00269, no_load_speed_rpm=46.0),
    )
}
MODEL_BY_NUMBER: dict[int, ModelSpec] = {m.model_number: m for m in MODELS.values()}


def model(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown servo model {name!r}; known: {', '.join(MODELS)}") from None


#: Hardware_Error_Status (70) bits, X series.
HARDWARE_ERROR_BITS: dict[int, str] = {
    0: "input voltage",
    1: "motor hall sensor",
    2: "overheating",
    3: "motor encoder",
    4: "electrical shock",
    5: "overload",
}
HW_INPUT_VOLTAGE = 1 << 0
HW_OVERHEATING = 1 << 2
HW_ENCODER = 1 << 3
HW_ELECTRICAL_SHOCK = 1 << 4
HW_OVERLOAD = 1 << 5


def describe_hardware_error(bits: int) -> list[str]:
    return [name for bit, name in HARDWARE_ERROR_BITS.items() if bits & (1 << bit)]


#: Status-packet error field (Protocol 2.0): bit 7 is the hardware alert, bits 0-6 an error number.
STATUS_ALERT = 0x80
STATUS_ERRORS: dict[int, str] = {
    1: "result fail",
    2: "instruction error",
    3: "CRC error",
    4: "data range error",
    5: "data length error",
    6: "data limit error",
    7: "access error",
}
ERR_RESULT_FAIL = 1
ERR_INSTRUCTION = 2
ERR_CRC = 3
ERR_DATA_RANGE = 4
ERR_DATA_LENGTH = 5
ERR_DATA_LIMIT = 6
ERR_ACCESS = 7
