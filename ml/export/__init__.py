"""Export: the add-on bundle (ONNX), quantisation, bundled weights, the model card, atomic writes."""
