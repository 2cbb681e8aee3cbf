"""ROS 2 bags -> datasets: written with rosbags in both storages (sqlite3, mcap), read back by
``emo dataset from-bag`` into the babbling and human-sequence formats; clear errors otherwise."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from emo_core.cli import main as emo_main
from emo_core.cli.dataset import dataset_from_bags
from emo_core.datasets.babbling import BabblingDataset
from emo_core.datasets.bags import (BagTopics, babble_samples, bag_storage, detect_kind,
                                    human_sequences, infer_mode, write_bag)
from emo_core.datasets.human import HumanSequenceDataset
from emo_core.errors import InputError
from emo_core.messages import emo_typestore
from emo_core.schema import COMMAND_NAMES, N_LANDMARKS
from emo_core.servo import ServoTable
from emo_core.twin import DigitalTwin

STORAGES = ("sqlite3", "mcap")
T0 = 1_700_000_000.0          # ROS time of the recordings (s)
TOPICS = BagTopics()


@pytest.fixture(scope="module")
def store():
    return emo_typestore()


@pytest.fixture(scope="module")
def twin() -> DigitalTwin:
    return DigitalTwin(seed=0, noise_std=0.0)


def _ns(t: float) -> int:
    return int(round(t * 1e9))


def _header(store, t: float, frame: str = ""):
    sec = int(np.floor(t))
    time = store.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=int(round((t - sec) * 1e9)))
    return store.types["std_msgs/msg/Header"](stamp=time, frame_id=frame)


def _landmarks(store, t: float, points: np.ndarray | None, space: int, camera: str = "left"):
    cls = store.types["emo_msgs/msg/FaceLandmarks"]
    if points is None:
        empty = np.zeros(0, np.float32)
        return cls(header=_header(store, t), face_detected=False, confidence=0.0, space=space, camera=camera,
                   x=empty, y=empty.copy(), z=empty.copy())
    pts = np.asarray(points, np.float32)
    z = pts[:, 2] if pts.shape[1] == 3 else np.zeros(N_LANDMARKS, np.float32)
    return cls(header=_header(store, t), face_detected=True, confidence=0.9, space=space, camera=camera,
               x=np.ascontiguousarray(pts[:, 0]), y=np.ascontiguousarray(pts[:, 1]), z=np.ascontiguousarray(z))


def _command(store, t: float, positions: np.ndarray, source: int = 2):
    cls = store.types["emo_msgs/msg/FaceCommand"]
    time = store.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0)
    return cls(header=_header(store, t), names=list(COMMAND_NAMES), positions=np.asarray(positions, np.float32),
               execute_at=time, source=source)


def _joint_state(store, t: float, commands: np.ndarray, table: ServoTable):
    ticks = table.commands_to_ticks(np.asarray(commands, np.float64)).astype(np.float64)
    center = np.array([s.model.center_ticks for s in table.servos], np.float64)
    per_rad = np.array([s.model.ticks_per_rad for s in table.servos], np.float64)
    cls = store.types["sensor_msgs/msg/JointState"]
    zeros = np.zeros(len(table), np.float64)
    return cls(header=_header(store, t), name=list(table.names), position=(ticks - center) / per_rad,
               velocity=zeros, effort=zeros.copy())


def _babble_run(store, twin, table, n_poses: int = 6, seed: int = 3):
    """What `ros2 bag record` sees of a babbling run: each pose re-sent while it settles, joint
    states at 100 Hz, the twin's face at 30 Hz; returns the messages and the expected samples."""
    rng = np.random.default_rng(seed)
    calm = table.home_commands()          # the babbler's calm face (as selfmodel.hardware.ServoRobot)
    messages, expected = [], []
    t = T0
    for _ in range(n_poses):
        pose = calm.copy()
        pose[4:] = rng.uniform(0.1, 0.9, 7)           # lower face only: mode "lower"
        for k in range(8):                              # re-sent every 50 ms for 0.4 s
            tk = t + 0.05 * k
            messages.append(("/emo/face/command", "emo_msgs/msg/FaceCommand", _ns(tk), _command(store, tk, pose)))
        last = None
        for k in range(1, 40):
            tk = t + 0.01 * k
            messages.append(("/emo/joint_states", "sensor_msgs/msg/JointState", _ns(tk),
                             _joint_state(store, tk, pose, table)))
            if k % 3 == 0:
                face = twin.forward(pose, noise=False)
                messages.append(("/emo/twin/landmarks", "emo_msgs/msg/FaceLandmarks", _ns(tk + 0.001),
                                 _landmarks(store, tk, face, space=2, camera="twin")))
                last = face
        expected.append((pose.astype(np.float32), last))
        t += 0.4
    # Commands of the coexpression graph on the same topic are not babbling and must be ignored.
    messages.append(("/emo/face/command", "emo_msgs/msg/FaceCommand", _ns(t),
                     _command(store, t, twin.calm_commands(), source=1)))
    return sorted(messages, key=lambda m: m[2]), expected


def _human_run(store, people_frames: np.ndarray, fps: float = 30.0, gap_after: int | None = None,
               missing: tuple[int, ...] = ()):
    messages = []
    t = T0
    for i, frame in enumerate(people_frames):
        points = None if i in missing else frame
        messages.append(("/emo/face/landmarks", "emo_msgs/msg/FaceLandmarks", _ns(t), _landmarks(store, t, points, 1)))
        t += 1.0 / fps + (2.0 if gap_after is not None and i == gap_after else 0.0)
    return messages


@pytest.fixture(scope="module")
def human_frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.5, (N_LANDMARKS, 3)).astype(np.float32)
    drift = np.linspace(0, 0.05, 40, dtype=np.float32)[:, None, None]
    return base[None] + drift


@pytest.mark.parametrize("storage", STORAGES)
def test_babbling_bag_round_trip(tmp_path, store, twin, table, storage):
    messages, expected = _babble_run(store, twin, table)
    bag = write_bag(tmp_path / "babble", messages, storage=storage, store=store)
    assert bag_storage(bag) == storage
    assert detect_kind([bag]) == "babbling"

    report = dataset_from_bags([bag], tmp_path / "out", kind="auto")
    assert report.kind == "babbling" and report.samples == len(expected) and report.skipped == 0
    data = BabblingDataset.open(tmp_path / "out")
    arrays = data.arrays()
    assert data.mode == "lower"                                   # only lower-face commands moved
    robot = data.info["robot"]
    assert (robot["kind"], robot["robot_id"], robot["face"]) == ("ros", "emo", "twin")
    from emo_core.selfmodel.robot import twin_config_hash
    assert robot["config_hash"] == twin_config_hash(twin)         # the face the data shows: the twin
    np.testing.assert_array_equal(arrays.commands, np.stack([c for c, _ in expected]))
    np.testing.assert_allclose(arrays.landmarks, np.stack([f for _, f in expected]), atol=1e-6)
    # present commands came back through the joint states and the servo table (tick rounding only)
    np.testing.assert_allclose(arrays.present, arrays.commands, atol=2e-3)
    assert arrays.settled.all()


def test_babble_pairs_the_last_face_before_the_next_pose(tmp_path, store, twin, table):
    messages, expected = _babble_run(store, twin, table, n_poses=3)
    # Drop every robot face of the second pose: it cannot become a sample.
    t_start, t_end = T0 + 0.4, T0 + 0.8
    kept = [m for m in messages if not (m[0] == "/emo/twin/landmarks" and t_start * 1e9 <= m[2] < t_end * 1e9)]
    bag = write_bag(tmp_path / "bag", kept, store=store)
    samples, skipped = babble_samples(bag, TOPICS, settle_time_s=0.15, table=table)
    assert skipped == 1 and len(samples) == 2
    np.testing.assert_array_equal(samples[1].commands, expected[2][0])
    # Without joint states, present = commands.
    bare = write_bag(tmp_path / "bare", [m for m in kept if m[0] != "/emo/joint_states"], store=store)
    samples, _ = babble_samples(bare, TOPICS, settle_time_s=0.15, table=table)
    np.testing.assert_array_equal(samples[0].present, samples[0].commands)


def test_a_joint_state_lacking_a_servo_is_an_error_in_bags_as_in_the_nodes(tmp_path, store, twin, table):
    """The bag reader and the nodes read JointState with the same function (emo_core.conversions):
    a JointState without one of the table's servos is an InputError naming it -- no longer a silent
    fallback to the commands as "present" in bags (the two used to disagree)."""
    from emo_core.conversions import joint_state_to_commands

    messages, _ = _babble_run(store, twin, table, n_poses=2)
    cls = store.types["sensor_msgs/msg/JointState"]
    short = []
    for m in messages:
        if m[0] == "/emo/joint_states":
            js = m[3]
            m = (m[0], m[1], m[2], cls(header=js.header, name=list(js.name[1:]), position=js.position[1:],
                                        velocity=js.velocity[1:], effort=js.effort[1:]))
        short.append(m)
    with pytest.raises(InputError, match=f"lacks servo.*{table.names[0]}"):
        joint_state_to_commands(short[[m[0] for m in short].index("/emo/joint_states")][3], table)
    bag = write_bag(tmp_path / "short", short, store=store)
    with pytest.raises(InputError, match=f"lacks servo.*{table.names[0]}.*another servo table"):
        babble_samples(bag, TOPICS, settle_time_s=0.15, table=table)


def test_the_last_pose_is_not_paired_with_the_face_going_home(tmp_path, store, twin, table):
    """After the babbler's last pose the commands stop and the driver's watchdog eases the face home
    while the recording goes on: the last sample is still the face the pose held."""
    messages, expected = _babble_run(store, twin, table, n_poses=2)
    messages = [m for m in messages if not (m[0] == "/emo/face/command" and _command_source(m[3]) == 1)]
    end = max(m[2] for m in messages) / 1e9
    home = twin.forward(table.home_commands(), noise=False)
    for k in range(1, 30):                                  # a second of the face at home
        t = end + 0.5 + 0.033 * k
        messages.append(("/emo/twin/landmarks", "emo_msgs/msg/FaceLandmarks", _ns(t),
                         _landmarks(store, t, home, space=2, camera="twin")))
    samples, _ = babble_samples(write_bag(tmp_path / "b", messages, store=store), TOPICS, table=table)
    np.testing.assert_allclose(samples[-1].landmarks, expected[-1][1], atol=1e-6)


def _command_source(msg) -> int:
    return int(msg.source)


def test_unsettled_when_the_face_came_too_early(tmp_path, store, twin, table):
    messages, _ = _babble_run(store, twin, table, n_poses=2)
    samples, _ = babble_samples(write_bag(tmp_path / "b", messages, store=store), TOPICS, settle_time_s=1.0,
                                table=table)
    assert not any(s.settled for s in samples)        # faces came < 0.4 s after each pose


def test_infer_mode(table):
    from emo_core.datasets.bags import BabbleSample

    calm = table.home_commands().astype(np.float32)
    def sample(delta: np.ndarray) -> BabbleSample:
        return BabbleSample(calm + delta, calm, np.zeros((N_LANDMARKS, 2), np.float32), True)
    upper, lower = np.zeros(11, np.float32), np.zeros(11, np.float32)
    upper[1], lower[9] = 0.2, 0.2
    assert infer_mode([sample(upper)], calm) == "upper"
    assert infer_mode([sample(lower)], calm) == "lower"
    assert infer_mode([sample(upper), sample(lower)], calm) == "full"


@pytest.mark.parametrize("storage", STORAGES)
def test_human_bag_round_trip(tmp_path, store, human_frames, storage):
    bag = write_bag(tmp_path / "alice_smile", _human_run(store, human_frames, missing=(5,)), storage=storage,
                    store=store)
    assert detect_kind([bag]) == "human"
    report = dataset_from_bags([bag], tmp_path / "out", kind="auto", subject="alice", label="smile")
    assert (report.kind, report.sequences, report.frames) == ("human", 1, len(human_frames))
    data = HumanSequenceDataset.load(tmp_path / "out" / "human_sequences.npz")
    seq = data[0]
    assert (seq.subject, seq.label) == ("alice", "smile")
    assert seq.fps == pytest.approx(30.0, rel=1e-6)
    assert not seq.detected[5] and seq.detected.sum() == len(human_frames) - 1
    keep = np.arange(len(human_frames)) != 5
    np.testing.assert_allclose(seq.landmarks[keep], human_frames[keep], atol=1e-6)
    assert np.isnan(seq.landmarks[5]).all()
    assert data.meta["source"] == "rosbag2"


def test_human_sequences_split_at_gaps(tmp_path, store, human_frames):
    bag = write_bag(tmp_path / "b", _human_run(store, human_frames, gap_after=19), store=store)
    sequences = human_sequences(bag, max_gap_s=1.0)
    assert [len(s) for s in sequences] == [20, 20]
    assert sequences[0].subject == "b" and sequences[1].video_id == "b#1"
    assert len(human_sequences(bag, max_gap_s=5.0)) == 1


def test_cli_from_bag(tmp_path, store, human_frames, twin, table, capsys):
    human = write_bag(tmp_path / "h", _human_run(store, human_frames), storage="mcap", store=store)
    assert emo_main(["dataset", "from-bag", str(human), "--out", str(tmp_path / "people"), "--subject", "bob"]) == 0
    assert "1 human sequence(s), 40 frames from 1 bag(s) (mcap)" in capsys.readouterr().out
    messages, expected = _babble_run(store, twin, table, n_poses=3)
    babble = write_bag(tmp_path / "bb", messages, store=store)
    assert emo_main(["dataset", "from-bag", str(babble), "--out", str(tmp_path / "bab"), "--mode", "full"]) == 0
    assert f"babbling dataset, {len(expected)} samples" in capsys.readouterr().out
    assert BabblingDataset.open(tmp_path / "bab").mode == "full"


def test_errors_are_one_clear_line(tmp_path, store, human_frames, capsys):
    def fails(*argv: str) -> str:
        assert emo_main(["dataset", "from-bag", *argv, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("emo: error:") and "Traceback" not in err
        return err

    assert "no such bag directory" in fails(str(tmp_path / "nope"))
    (tmp_path / "plain").mkdir()
    assert "no metadata.yaml" in fails(str(tmp_path / "plain"))

    bag = write_bag(tmp_path / "h", _human_run(store, human_frames), store=store)
    assert "no metric-space FaceLandmarks on /emo/other" in fails(str(bag), "--landmarks-topic", "/emo/other")
    assert "no FaceCommand with source BABBLE" in fails(str(bag), "--kind", "babbling")
    # The same recording twice (even spelled differently) would make duplicate samples.
    assert "is given twice" in fails(str(bag), str(bag) + "/", "--subject", "bob")
    assert not (tmp_path / "o").exists()

    # A corrupt database: the bytes of the sqlite file overwritten.
    broken = tmp_path / "broken"
    shutil.copytree(bag, broken)
    db = next(broken.glob("*.db3"))
    db.write_bytes(b"not a database" * 100)
    assert "broken" in fails(str(broken))

    # An existing non-empty --out is refused for babbling (it would mix runs).
    with pytest.raises(InputError, match="not empty"):
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("x")
        from emo_core.selfmodel.bags import babbling_dataset
        babbling_dataset([bag], tmp_path / "full")


def test_write_bag_refuses_existing_and_unknown_storage(tmp_path, store):
    (tmp_path / "exists").mkdir()
    with pytest.raises(InputError, match="exists"):
        write_bag(tmp_path / "exists", [], store=store)
    with pytest.raises(InputError, match="storage"):
        write_bag(tmp_path / "new", [], storage="rosbag1", store=store)
