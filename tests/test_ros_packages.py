"""The colcon workspace without ROS: package manifests, entry points, parameter schemas vs config.

* every ``src/*/package.xml`` parses and validates with catkin_pkg and names what its code uses
  (imports, message types named in code, packages named in launch files) -- and nothing it does not;
* every console script of the ament_python packages points at a module with ``main``;
* ``config/emo_nodes.yaml`` holds, for every node the launch files start, exactly the parameters
  that node declares, with the declared types, in range;
* modules that must stay ROS-free (emo_core, emo_ros' helpers) do not import rclpy.
"""
from __future__ import annotations

import ast
import re
import runpy
import sys
from pathlib import Path

import pytest
import setuptools
import yaml
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
EMO_ROS = SRC / "emo_ros" / "emo_ros"

try:
    import emo_ros  # noqa: F401
except ImportError:
    sys.path.insert(0, str(SRC / "emo_ros"))

from emo_core.errors import ConfigError  # noqa: E402
from emo_ros.parameters import INSTANCES, SCHEMAS, check_values  # noqa: E402

#: Python module -> the ROS package (rosdep key) that provides it.
MODULE_PACKAGES = {"numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml",
                   "scipy": "python3-scipy"}
#: Declared dependencies that code does not name, and why they are right anyway.
NOT_IMPORTED = {
    "emo_ros": {"lifecycle_msgs": "the lifecycle services rclpy.lifecycle serves",
                "builtin_interfaces": "Time in every header, built by emo_core.conversions in the nodes",
                "std_msgs": "Header, built by emo_core.conversions in the nodes",
                "python3-pytest": "tests"},
    "emo_bringup": {"ros2launch": "`ros2 launch` itself", "python3-pytest": "tests"},
}
ROS_FREE = ["parameters.py", "__init__.py"]
#: emo_ros holds the node modules (one per executable) and the runtime they share, nothing else: the
#: message layer and the stages' logic live in emo_core.
SHARED = {"__init__.py", "parameters.py", "runtime.py"}


def packages() -> list[Path]:
    found = sorted(SRC.glob("*/package.xml"))
    assert {p.parent.name for p in found} >= {"emo_core", "emo_msgs", "emo_ros", "emo_bringup"}
    return found


def python_files(package: str) -> list[Path]:
    files = sorted((SRC / package).rglob("*.py"))
    if package == "emo_bringup":
        files += sorted((ROOT / "launch").glob("*.launch.py"))
    return [f for f in files if "build" not in f.parts]


def imported_modules(files: list[Path]) -> set[str]:
    modules = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def named_packages(files: list[Path]) -> set[str]:
    """ROS packages named in string literals: 'pkg/msg/Type', package="pkg", get_package_*("pkg")."""
    names = set()
    for file in files:
        text = file.read_text()
        names.update(re.findall(r'"([a-z_][a-z0-9_]*)/(?:msg|srv)/[A-Z]\w*"', text))
        names.update(re.findall(r'package="([a-z_][a-z0-9_]*)"', text))
        names.update(re.findall(r'get_package_(?:prefix|share_directory)\("([a-z_][a-z0-9_]*)"\)', text))
    return names


def exec_depends(manifest) -> set[str]:
    return {d.name for d in manifest.exec_depends + manifest.build_export_depends + manifest.test_depends}


@pytest.mark.parametrize("path", packages(), ids=lambda p: p.parent.name)
def test_package_xml_is_valid(path):
    manifest = parse_package(str(path))
    manifest.validate()
    assert manifest.name == path.parent.name
    assert manifest.package_format == 3
    assert manifest.get_build_type() in ("ament_python", "ament_cmake")
    assert (path.parent / ("setup.py" if manifest.get_build_type() == "ament_python" else "CMakeLists.txt")).is_file()


@pytest.mark.parametrize("package", ["emo_ros", "emo_bringup"])
def test_package_names_exactly_its_real_dependencies(package):
    manifest = parse_package(str(SRC / package / "package.xml"))
    declared = exec_depends(manifest)
    files = python_files(package)
    local = {package, "__future__"} | set(sys.stdlib_module_names)
    modules = imported_modules(files) - local
    used = {MODULE_PACKAGES.get(m, m) for m in modules} | (named_packages(files) - {package})
    used -= {"setuptools"}           # build tool of every ament_python package
    assert used - declared == set(), f"{package} uses but does not declare: {sorted(used - declared)}"
    unused = declared - used - set(NOT_IMPORTED[package])
    assert unused == set(), f"{package} declares but does not use: {sorted(unused)}"


def test_emo_core_declares_its_rosdep_python_modules():
    manifest = parse_package(str(SRC / "emo_core" / "package.xml"))
    used = imported_modules(python_files("emo_core"))
    needed = {key for module, key in MODULE_PACKAGES.items() if module in used}
    assert needed <= exec_depends(manifest)


def test_emo_msgs_depends_on_every_package_its_messages_use():
    manifest = parse_package(str(SRC / "emo_msgs" / "package.xml"))
    deps = {d.name for d in manifest.build_depends + manifest.exec_depends}
    referenced = set()
    for msg in (SRC / "emo_msgs" / "msg").glob("*.msg"):
        referenced.update(re.findall(r"^\s*([a-z_]+)/\w+", msg.read_text(), re.MULTILINE))
    assert referenced and referenced <= deps
    assert [g.name for g in manifest.member_of_groups] == ["rosidl_interface_packages"]


def setup_kwargs(package: str, monkeypatch) -> dict:
    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    monkeypatch.chdir(SRC / package)
    runpy.run_path(str(SRC / package / "setup.py"), run_name="__main__")
    return captured


@pytest.mark.parametrize("package", ["emo_core", "emo_ros", "emo_bringup"])
def test_setup_py_entry_points_resolve_to_a_main(package, monkeypatch):
    kwargs = setup_kwargs(package, monkeypatch)
    assert kwargs["name"] == package
    assert (f"share/{package}", ["package.xml"]) in kwargs["data_files"]
    scripts = kwargs.get("entry_points", {}).get("console_scripts", [])
    for script in scripts:
        name, target = (part.strip() for part in script.split("="))
        module, function = target.split(":")
        file = SRC / package / (module.replace(".", "/") + ".py")
        if not file.is_file():
            file = SRC / package / module.replace(".", "/") / "__init__.py"
        tree = ast.parse(file.read_text())
        assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, f"{script}: no {function}"
    if package == "emo_ros":
        assert sorted(s.split("=")[0].strip() for s in scripts) == sorted(SCHEMAS)


def test_emo_bringup_installs_launch_config_and_rviz(monkeypatch):
    data = dict(setup_kwargs("emo_bringup", monkeypatch)["data_files"])
    launch = {Path(p).name for p in data["share/emo_bringup/launch"]}
    assert launch == {"coexpression.launch.py", "babble.launch.py"}
    config = {Path(p).name for p in data["share/emo_bringup/config"]}
    assert config == {p.name for p in (ROOT / "config").glob("*.yaml")} and "emo_nodes.yaml" in config
    assert [Path(p).name for p in data["share/emo_bringup/rviz"]] == ["emo.rviz"]
    for files in data.values():
        assert all((SRC / "emo_bringup" / f).is_file() for f in files)


def test_each_node_declares_its_schema():
    for executable in SCHEMAS:
        tree = ast.parse((EMO_ROS / f"{executable}.py").read_text())
        declared = [n for n in ast.walk(tree) if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name)
                    and n.value.id == "SCHEMAS"]
        assert [ast.literal_eval(n.slice) for n in declared] == [executable]
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert "declare" in calls and "run" in calls


def test_schemas_are_consistent():
    for executable, schema in SCHEMAS.items():
        for name, param in schema.items():
            assert param.description.strip().endswith("."), f"{executable}.{name}: describe it in a sentence"
            param.check(name, param.default)                 # defaults are valid values
            if param.range is not None:
                assert param.kind in (int, float) and param.range[0] < param.range[1]
    assert set(INSTANCES.values()) == set(SCHEMAS)


def test_config_matches_the_declared_parameters():
    raw = yaml.safe_load((ROOT / "config" / "emo_nodes.yaml").read_text())
    nodes = {}
    for key, body in raw.items():
        assert key.startswith("/**/"), f"{key}: write node keys as /**/<name> (any namespace)"
        assert list(body) == ["ros__parameters"]
        nodes[key[4:]] = body["ros__parameters"]
    assert set(nodes) == set(INSTANCES)
    for name, values in nodes.items():
        schema = SCHEMAS[INSTANCES[name]]
        assert set(values) == set(schema), f"{name}: config and declared parameters differ"
        check_values(schema, values, f"{name}: ")


def test_docs_list_every_parameter():
    doc = (ROOT / "docs" / "ros.md").read_text()
    for executable, schema in SCHEMAS.items():
        assert f"`{executable}`" in doc
        for name in schema:
            assert f"`{name}`" in doc, f"docs/ros.md does not mention {executable}.{name}"


def test_emo_ros_holds_only_node_modules_and_the_shared_runtime():
    modules = {f.name for f in EMO_ROS.glob("*.py")}
    assert modules - SHARED == {f"{executable}.py" for executable in SCHEMAS}


def test_apply_set_refuses_read_only_and_bad_values_and_applies_live_ones():
    """`ros2 param set` (ROS-free half): never accepted and ignored."""
    from emo_ros.parameters import apply_set

    schema = SCHEMAS["peak_activation"]
    current = {name: param.default for name, param in schema.items()}
    assert "read-only" in apply_set(schema, current, [("model_dir", "/elsewhere")])
    assert "expected int" in apply_set(schema, current, [("refresh_every", 2.5)])
    assert "outside" in apply_set(schema, current, [("refresh_every", 5000)])
    # all or nothing: a refused parameter leaves the others of the same set unapplied too
    assert apply_set(schema, current, [("refresh_every", 5), ("model_dir", "x")]) is not None
    assert current["refresh_every"] == 3
    assert apply_set(schema, current, [("refresh_every", 5)]) is None and current["refresh_every"] == 5
    seen = []

    def refuse(changed):
        seen.append(dict(changed))
        raise ConfigError("cannot apply that")

    assert apply_set(schema, current, [("refresh_min_motion", 1.0)], refuse) == "cannot apply that"
    assert seen == [{"refresh_min_motion": 1.0}] and current["refresh_min_motion"] == 2.0


def test_every_parameter_says_whether_it_is_applied_on_set():
    for schema in SCHEMAS.values():
        for param in schema.values():
            assert param.describe().endswith(("Applied on set.", "Read at start (read-only)."))


@pytest.mark.parametrize("file", ROS_FREE)
def test_helpers_do_not_import_rclpy(file):
    assert "rclpy" not in imported_modules([EMO_ROS / file])


def test_emo_core_never_imports_ros():
    ros = {"rclpy", "rosidl_runtime_py", "launch", "launch_ros", "cv_bridge", "emo_ros"}
    assert imported_modules(python_files("emo_core")) & ros == set()
