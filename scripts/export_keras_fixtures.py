"""Keras SimpleRNN (+ Dense) fixtures from real Keras 3 (torch backend): each case writes
tests/fixtures/keras/NAME.safetensors (through keras_to_safetensors.export) and NAME.json with
the inputs `xs` ([T][I]), the SimpleRNN's outputs `hs` ([T][H], in the order Keras returns
them) and the Dense layer's `ys` ([T][O]).

    KERAS_BACKEND=torch /tmp/venv-keras/bin/python scripts/export_keras_fixtures.py
"""

import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_to_safetensors import export  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras"


def case(name, i, h, o, t, seed, activation="tanh", use_bias=True, go_backwards=False):
    keras.utils.set_random_seed(seed)
    rnn = keras.layers.SimpleRNN(h, activation=activation, use_bias=use_bias,
                                 go_backwards=go_backwards, return_sequences=True,
                                 bias_initializer="random_normal", name="simple_rnn")
    dense = keras.layers.Dense(o, name="dense", bias_initializer="random_normal")
    inputs = keras.Input((t, i))
    hidden = rnn(inputs)
    model = keras.Model(inputs, dense(hidden))
    states = keras.Model(inputs, hidden)
    xs = np.random.default_rng(seed).standard_normal((1, t, i)).astype(np.float32)
    OUT.mkdir(parents=True, exist_ok=True)
    export(model, str(OUT / f"{name}.safetensors"))
    hs = np.asarray(states.predict(xs, verbose=0))[0]
    ys = np.asarray(model.predict(xs, verbose=0))[0]
    data = {"name": name, "source": f"keras {keras.__version__} ({keras.backend.backend()} backend)",
            "go_backwards": go_backwards, "xs": xs[0].tolist(), "hs": hs.tolist(), "ys": ys.tolist()}
    (OUT / f"{name}.json").write_text(json.dumps(data))
    print("wrote", name)


if __name__ == "__main__":
    case("simple_rnn_i3_h4_o2", 3, 4, 2, 30, 21)
    case("simple_rnn_relu_i2_h8_o3", 2, 8, 3, 40, 22, activation="relu")
    case("simple_rnn_no_bias_i5_h16_o4", 5, 16, 4, 300, 23, use_bias=False)
    case("simple_rnn_backwards_i3_h4_o2", 3, 4, 2, 20, 24, go_backwards=True)
