"""DESIGN.md layering: `ml` and `au_retarget_addon.core` never import bpy."""

import subprocess
import sys

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
    blender_scripts = (
        "render_pairs", "bench_render_pairs", "render_sensitivity", "crop_rolls",
        "landmark_displacement",
    )  # fmt: skip
    if m.name.removeprefix("ml.") not in blender_scripts:
        importlib.import_module(m.name)  # Blender scripts are not library modules
assert "bpy" not in sys.modules
print("ok")
"""


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
