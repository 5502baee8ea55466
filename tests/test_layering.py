"""The layering of docs/architecture.md: bpy only on the Blender side, `ml` packages in data-flow
order with no upward imports and no import cycles, the add-on's core free of bpy and torch."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# ml's packages in data-flow order: a module imports only from its own layer or below.
LAYERS = {"data": 1, "nets": 2, "losses": 3, "train": 4, "eval": 5, "export": 6}
TOP = 7  # ml.recipe (runs every stage), the benchmarks and the Blender-side scripts
BLENDER_SIDE = ("ml.render_pairs", "ml.bench.render_pairs", "ml.blender")
# what non-Blender ml code may import from outside ml: the bpy-free rig and tracking core
BPY_FREE_OUTSIDE = ("rigs.spec", "rigs.geometry", "au_retarget_addon.core")

BLOCK_BPY = """
import sys
class _NoBpy:
    def find_spec(self, name, path=None, target=None):
        if name == "bpy" or name.startswith(("bpy.", "bpy_extras", "mathutils")):
            raise ImportError(f"layering: {name} imported outside Blender code")
        return None
sys.meta_path.insert(0, _NoBpy())
import pkgutil, importlib
import ml, au_retarget_addon.core, rigs.spec, rigs.geometry
for m in pkgutil.walk_packages(au_retarget_addon.core.__path__, "au_retarget_addon.core."):
    importlib.import_module(m.name)
for m in pkgutil.walk_packages(ml.__path__, "ml."):
    if not m.name.startswith(BLENDER_SIDE):
        importlib.import_module(m.name)  # Blender-side scripts run inside Blender only
assert "bpy" not in sys.modules
print("ok")
""".replace("BLENDER_SIDE", repr(BLENDER_SIDE))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str) -> dict[str, set[str]]:
    """Every import of every module under `package`, those inside functions too, relative
    ones resolved."""
    graph: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        name = module_name(path)
        targets = graph.setdefault(name, set())
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                up = base[: len(base) - node.level + 1] if node.level else []
                targets.add(".".join(up + ([node.module] if node.module else [])))
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("errors", "cache", "device", "config", "wheel_files"):
        return 0  # the foundations
    return LAYERS.get(parts[1], TOP)


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, targets in graph.items():
        blender_side = mod.startswith(BLENDER_SIDE)
        for t in targets:
            if t.split(".")[0] == "ml":
                if layer(t) > layer(mod):
                    bad.append(f"{mod} imports {t} from a later layer")
                if t.startswith(BLENDER_SIDE) and not blender_side:
                    bad.append(f"{mod} imports the Blender-side {t}")
            elif t.split(".")[0] in ("rigs", "au_retarget_addon") and not (
                blender_side or t.startswith(BPY_FREE_OUTSIDE)
            ):
                bad.append(f"{mod} imports {t}, which needs Blender")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_ml_imports_follow_the_data_flow_without_cycles():
    graph = import_graph("ml")
    relative = [p for p in (REPO / "ml").rglob("*.py") if "from ." in p.read_text()]
    assert relative == [], "ml's imports are absolute (ml.<package>.<module>)"
    assert {"ml.data.pairs_dataset", "ml.nets.regressor", "ml.train.loop"} <= set(graph)
    assert violations(graph) == []
    assert cycles(graph) == []


def test_the_graph_checks_can_fail():
    graph = {
        "ml.train.loop": {"ml.eval.metrics", "rigs.builder"},  # upward, and a bpy module
        "ml.eval.metrics": {"ml.train.loop"},  # with the line above: a cycle
        "ml.data.sampling": {"ml.blender.crop_rolls", "rigs.spec"},
        "ml.blender.crop_rolls": {"rigs.builder", "ml.data.sampling"},  # allowed (but a cycle)
    }
    assert violations(graph) == [
        "ml.data.sampling imports ml.blender.crop_rolls from a later layer",
        "ml.data.sampling imports the Blender-side ml.blender.crop_rolls",
        "ml.train.loop imports ml.eval.metrics from a later layer",
        "ml.train.loop imports rigs.builder, which needs Blender",
    ]
    assert sorted(cycles(graph)) == [
        ["ml.blender.crop_rolls", "ml.data.sampling"],
        ["ml.eval.metrics", "ml.train.loop"],
    ]


def test_addon_ships_without_ml_and_its_core_without_the_operators():
    graph = import_graph("au_retarget_addon")
    for mod, targets in graph.items():
        assert not {t for t in targets if t.split(".")[0] == "ml"}, mod
        if mod.startswith("au_retarget_addon.core"):
            outside = {t for t in targets if t.startswith("au_retarget_addon")}
            assert all(t.startswith("au_retarget_addon.core") for t in outside), (mod, outside)


def test_ml_and_core_import_without_bpy():
    out = subprocess.run([sys.executable, "-c", BLOCK_BPY], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_core_runs_without_torch():
    """The tracking core ships inside Blender with numpy, OpenCV and onnxruntime only."""
    code = BLOCK_BPY.replace('name == "bpy"', 'name in ("bpy", "torch")').replace(
        'name.startswith(("bpy.", "bpy_extras", "mathutils"))',
        'name.startswith(("bpy.", "bpy_extras", "mathutils", "torch."))',
    )
    code = code.split("import pkgutil")[0] + (
        "import pkgutil, importlib\nimport au_retarget_addon.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'au_retarget_addon.core.'):\n"
        "    importlib.import_module(m.name)\nprint('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_blocker_really_blocks_bpy():
    """The check above can fail: importing bpy under the same blocker raises."""
    code = BLOCK_BPY.replace("import ml, au_retarget_addon.core", "import bpy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "layering: bpy" in out.stderr
