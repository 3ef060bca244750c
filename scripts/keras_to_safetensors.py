"""Keras SimpleRNN and Dense layers to a safetensors file that `elman::keras` reads.

Keras 3 saves weights in HDF5 (`.weights.h5`, inside `.keras` archives) by position, without
the layers' configuration (which is in the archive's config.json); this script writes the
layers' weights under Keras's own names, with their configuration, instead:

    {layer}/kernel            [I, H]   SimpleRNN input weights (x·kernel: the transpose of W_xh)
    {layer}/recurrent_kernel  [H, H]   (h·recurrent_kernel: the transpose of W_hh)
    {layer}/bias              [H]      (absent with use_bias=False)
    {dense}/kernel            [H, O]   Dense (the transpose of W_hy)
    {dense}/bias              [O]

and each layer's configuration in the file's metadata: `{layer}.class` (SimpleRNN or Dense),
`{layer}.activation`, `{layer}.go_backwards`, `{layer}.return_sequences`, `{layer}.use_bias`,
`{layer}.stateful`, plus `keras_version`. The Rust loader checks all of them.

    python3 -m venv /tmp/venv-keras && /tmp/venv-keras/bin/pip install -r scripts/requirements-keras.txt
    KERAS_BACKEND=torch /tmp/venv-keras/bin/python scripts/keras_to_safetensors.py model.keras out.safetensors
"""

import sys

import numpy as np
from safetensors.numpy import save_file


def export(model, path):
    """Writes `model`'s SimpleRNN and Dense layers to `path`; other layers are an error."""
    import keras

    tensors, metadata = {}, {"format": "keras", "keras_version": keras.__version__}
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind not in ("SimpleRNN", "Dense"):
            raise ValueError(f"layer `{layer.name}` is a {kind}: only SimpleRNN and Dense export")
        config = layer.get_config()
        metadata[f"{layer.name}.class"] = kind
        metadata[f"{layer.name}.activation"] = str(config.get("activation"))
        metadata[f"{layer.name}.use_bias"] = str(bool(config.get("use_bias", True))).lower()
        if kind == "SimpleRNN":
            for key in ("go_backwards", "return_sequences", "stateful", "unroll"):
                metadata[f"{layer.name}.{key}"] = str(bool(config.get(key, False))).lower()
            names = ["kernel", "recurrent_kernel", "bias"]
        else:
            names = ["kernel", "bias"]
        for name, weight in zip(names, layer.get_weights()):
            tensors[f"{layer.name}/{name}"] = np.ascontiguousarray(weight, dtype=np.float32)
    save_file(tensors, path, metadata=metadata)


if __name__ == "__main__":
    import keras

    export(keras.saving.load_model(sys.argv[1]), sys.argv[2])
