"""Keras model -> TFLite and ONNX graphs: the source being converted, and the converters.

Export (which writes files) and quantize (which measures candidates) both
build on these, so they live below both and import neither.
"""
