"""Export: the add-on bundle (ONNX), quantisation, bundle weights, model card, atomic writes."""
