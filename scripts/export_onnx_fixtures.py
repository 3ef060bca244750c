"""ONNX fixtures built with onnx.helper and exported by torch.onnx.export, run by onnxruntime.

Each case writes tests/fixtures/onnx/NAME.onnx and NAME.json: the inputs `xs` ([T][I]), the
hidden states `hs` ([T][H], the RNN's output Y), the logits `ys` ([T][O]) when the graph has a
readout, and what the loader must say about the file (`expect`: "loads" or an error kind).

    python3 -m venv /tmp/venv-onnx && /tmp/venv-onnx/bin/pip install -r scripts/requirements-onnx.txt
    /tmp/venv-onnx/bin/python scripts/export_onnx_fixtures.py

With torch also installed (scripts/requirements-fixtures.txt), the torch_* cases are exported
too: torch.onnx.export's TorchScript exporter (dynamo=False), whose graphs compute a zero
initial state with Shape/Gather/Unsqueeze/Concat/Expand and the readout as MatMul + Add.
"""

import json
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "onnx"


def rnn_model(name, i, h, o, t, seed, *, activation="Tanh", direction=None, bias=True, h0="none",
              readout="matmul", clip=None, weight_dtype=np.float32, layout=0, node_name="rnn0"):
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    w = (rng.standard_normal((dirs, h, i)) / np.sqrt(i + h)).astype(np.float32)
    r = (rng.standard_normal((dirs, h, h)) * 0.9 / np.sqrt(h)).astype(np.float32)
    b = (rng.standard_normal((dirs, 2 * h)) * 0.1).astype(np.float32)
    xs = rng.standard_normal((t, 1, i)).astype(np.float32)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [t, 1, i] if layout == 0 else [1, t, i])]
    inits, nodes = [], []
    rnn_inputs = ["x"]
    # Half-precision weights are stored as f16 initializers and cast to float by the graph,
    # as mixed-precision exports write them (the RNN operator takes one type for all inputs).
    for value, name_ in [(w, "onnx::RNN_W_7"), (r, "onnx::RNN_R_8")] + ([(b, "onnx::RNN_B_9")] if bias else []):
        if weight_dtype == np.float32:
            inits.append(numpy_helper.from_array(value, name_))
            rnn_inputs.append(name_)
        else:
            inits.append(numpy_helper.from_array(value.astype(weight_dtype), name_ + "_half"))
            nodes.append(helper.make_node("Cast", [name_ + "_half"], [name_], to=TensorProto.FLOAT))
            rnn_inputs.append(name_)
    if not bias:
        rnn_inputs.append("")
    rnn_inputs.append("")  # sequence_lens
    h0_value = np.zeros((1, 1, h), np.float32)
    feeds = {"x": xs if layout == 0 else xs.transpose(1, 0, 2)}
    if h0 == "initializer":
        h0_value = (rng.standard_normal((dirs, 1, h)) * 0.5).astype(np.float32)
        inits.append(numpy_helper.from_array(h0_value, "h0"))
        rnn_inputs.append("h0")
    elif h0 == "input":
        h0_value = (rng.standard_normal((1, 1, h)) * 0.5).astype(np.float32)
        inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 1, h]))
        feeds["h0"] = h0_value
        rnn_inputs.append("h0")
    elif h0 == "zeros_subgraph":
        # What torch.onnx.export writes for a model called without a state.
        nodes += [
            helper.make_node("Shape", ["x"], ["shape"]),
            helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(np.array([1], np.int64))),
            helper.make_node("Gather", ["shape", "one"], ["batch"], axis=0),
            helper.make_node("Constant", [], ["dims"], value=numpy_helper.from_array(np.array([1], np.int64))),
            helper.make_node("Constant", [], ["hidden"], value=numpy_helper.from_array(np.array([h], np.int64))),
            helper.make_node("Concat", ["dims", "batch", "hidden"], ["h0_shape"], axis=0),
            helper.make_node("ConstantOfShape", ["h0_shape"], ["h0"],
                             value=numpy_helper.from_array(np.array([0.0], np.float32))),
        ]
        rnn_inputs.append("h0")
    attrs = {"hidden_size": h}
    if activation != "Tanh" or name.endswith("explicit"):
        attrs["activations"] = [activation]
    if direction is not None:
        attrs["direction"] = direction
    if clip is not None:
        attrs["clip"] = clip
    if layout:
        attrs["layout"] = layout
    nodes.append(helper.make_node("RNN", rnn_inputs, ["y", "y_h"], name=node_name, **attrs))
    y_shape = [t, dirs, 1, h] if layout == 0 else [1, t, dirs, h]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)]
    w_y = (rng.standard_normal((o, h)) / np.sqrt(h)).astype(np.float32)
    b_y = (rng.standard_normal(o) * 0.1).astype(np.float32)
    if readout == "matmul":
        squeeze_axis = 1 if layout == 0 else 2
        inits += [numpy_helper.from_array(np.array([squeeze_axis], np.int64), "axes"),
                  numpy_helper.from_array(w_y.T.copy(), "onnx::MatMul_20"),
                  numpy_helper.from_array(b_y, "head.bias")]
        nodes += [helper.make_node("Squeeze", ["y", "axes"], ["y2"]),
                  helper.make_node("MatMul", ["y2", "onnx::MatMul_20"], ["mm"]),
                  helper.make_node("Add", ["head.bias", "mm"], ["logits"])]
        logits_shape = [t, 1, o] if layout == 0 else [1, t, o]
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, logits_shape))
    elif readout == "gemm":
        # Gemm(Y2, W_y, b_y) with transB = 1 (W_y as nn.Linear stores it), on the [T, H]
        # states (batch 1).
        inits += [numpy_helper.from_array(np.array([t, h], np.int64), "shape2"),
                  numpy_helper.from_array(w_y, "head.weight"),
                  numpy_helper.from_array(b_y, "head.bias")]
        nodes += [helper.make_node("Reshape", ["y", "shape2"], ["y2"]),
                  helper.make_node("Gemm", ["y2", "head.weight", "head.bias"], ["logits"], transB=1)]
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, [t, o]))
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, producer_name="onnx.helper", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, feeds, xs[:, 0, :]


def write(name, model, feeds, xs, expect):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.onnx"
    onnx.save(model, path)
    case = {"name": name, "source": f"onnx {onnx.__version__} helper, onnxruntime {ort.__version__}",
            "expect": expect, "xs": xs.tolist()}
    if expect == "loads":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        results = dict(zip(names, session.run(None, feeds)))
        y = results["y"]
        # [h_fwd; h_bwd] per step for a bidirectional node (layout 0: [T, dirs, 1, H]).
        case["hs"] = np.concatenate([y[:, d, 0, :] for d in range(y.shape[1])], axis=1).tolist()
        if "logits" in results:
            case["ys"] = results["logits"].reshape(len(xs), -1).tolist()
        if "h0" in feeds:
            case["h0"] = feeds["h0"].reshape(-1).tolist()
    (OUT / f"{name}.json").write_text(json.dumps(case))


def torch_cases():
    try:
        import torch
    except ImportError:
        print("torch not installed: the torch_* fixtures are left as they are")
        return

    class Model(torch.nn.Module):
        def __init__(self, i, h, o, nonlinearity, bidirectional, layers):
            super().__init__()
            self.rnn = torch.nn.RNN(i, h, nonlinearity=nonlinearity, bidirectional=bidirectional,
                                    num_layers=layers)
            self.head = torch.nn.Linear(2 * h if bidirectional else h, o)

        def forward(self, x, h0=None):
            y, _ = self.rnn(x, h0)
            return self.head(y)

    # One node per layer: torch.onnx.export slices a given h0 per layer (Slice of the graph
    # input) and computes each layer's zeros otherwise.
    for name, (i, h, o, t, nonlinearity, with_h0, seed, bidirectional, layers) in {
        "torch_forward_i3_h4_o2": (3, 4, 2, 40, "tanh", False, 11, False, 1),
        "torch_relu_i2_h8_o3": (2, 8, 3, 40, "relu", False, 12, False, 1),
        "torch_h0_input_i5_h16_o4": (5, 16, 4, 200, "tanh", True, 13, False, 1),
        "torch_bidirectional_i3_h4_o2": (3, 4, 2, 50, "tanh", False, 14, True, 1),
        "torch_two_layers_i3_h4_o2": (3, 4, 2, 60, "tanh", False, 15, False, 2),
        "torch_three_layers_relu_h0_i4_h8_o3": (4, 8, 3, 100, "relu", True, 16, False, 3),
        "torch_bidirectional_two_layers_i3_h4_o2": (3, 4, 2, 50, "tanh", False, 17, True, 2),
        "torch_bidirectional_two_layers_h0_i2_h6_o3": (2, 6, 3, 80, "tanh", True, 18, True, 2),
    }.items():
        torch.manual_seed(seed)
        model = Model(i, h, o, nonlinearity, bidirectional, layers).eval()
        x = torch.randn(t, 1, i)
        dirs = 2 if bidirectional else 1
        h0 = torch.randn(layers * dirs, 1, h) * 0.5 if with_h0 else None
        args = (x, h0) if with_h0 else (x,)
        path = OUT / f"{name}.onnx"
        torch.onnx.export(model, args, str(path), dynamo=False, opset_version=17,
                          input_names=["x", "h0"] if with_h0 else ["x"], output_names=["logits"])
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {"x": x.numpy()} | ({"h0": h0.numpy()} if with_h0 else {})
        (logits,) = session.run(None, feeds)
        with torch.no_grad():
            hs, _ = model.rnn(x, h0)
            layer_hs = layer_outputs(torch, model.rnn, x, h0)
        assert torch.allclose(torch.tensor(layer_hs[-1]), hs[:, 0, :], atol=1e-6)
        case = {"name": name, "source": f"torch {torch.__version__} onnx.export (dynamo=False), "
                f"onnxruntime {ort.__version__}", "expect": "loads",
                # [h_fwd; h_bwd] per step for a bidirectional layer, as nn.RNN returns it.
                "xs": x[:, 0, :].tolist(), "hs": hs[:, 0, :].tolist(),
                "ys": logits.reshape(t, -1).tolist()}
        if with_h0:
            case["h0"] = h0.reshape(-1).tolist()
        if layers > 1:
            # Each layer's output ([T][dirs·H]), the lowest first: the input of the one above.
            case["layers"] = layer_hs
        (OUT / f"{name}.json").write_text(json.dumps(case))
        print("wrote", name)


def torch_head_cases():
    """What torch exports for other heads: a batch_first RNN (Transposes around it), a
    classifier of whole sequences reading the last step through a softmax (Gather, Softmax),
    and a two-layer head (Linear, Relu, Linear) that the loader must refuse."""
    import torch

    class Model(torch.nn.Module):
        def __init__(self, kind):
            super().__init__()
            self.kind = kind
            self.rnn = torch.nn.RNN(3, 4, batch_first=kind == "batch_first")
            self.head = torch.nn.Linear(4, 2)
            self.head2 = torch.nn.Linear(2, 2) if kind == "two_heads" else None

        def forward(self, x):
            y, _ = self.rnn(x)
            if self.kind == "last_step_softmax":
                return self.head(y[-1]).softmax(-1)
            logits = self.head(y)
            return self.head2(torch.relu(logits)) if self.head2 is not None else logits

    t = 30
    for seed, kind in enumerate(["batch_first", "last_step_softmax", "two_heads"], start=30):
        name = f"torch_{kind}_i3_h4_o2"
        torch.manual_seed(seed)
        model = Model(kind).eval()
        x = torch.randn(1, t, 3) if kind == "batch_first" else torch.randn(t, 1, 3)
        path = OUT / f"{name}.onnx"
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["out"])
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            hs, _ = model.rnn(x)
        steps = x[0] if kind == "batch_first" else x[:, 0, :]
        hs = hs[0] if kind == "batch_first" else hs[:, 0, :]
        case = {"name": name, "source": f"torch {torch.__version__} onnx.export (dynamo=False), "
                f"onnxruntime {ort.__version__}",
                "expect": "Unsupported" if kind == "two_heads" else "loads",
                "xs": steps.tolist(), "hs": hs.tolist()}
        if kind == "batch_first":
            case["ys"] = out.reshape(t, -1).tolist()
        elif kind == "last_step_softmax":
            # The probabilities of the last step only.
            case["probabilities"] = out.reshape(-1).tolist()
        (OUT / f"{name}.json").write_text(json.dumps(case))
        print("wrote", name)


def layer_outputs(torch, rnn, x, h0):
    """Each layer of a stacked nn.RNN run on its own, with the stack's weights and h0 rows."""
    dirs = 2 if rnn.bidirectional else 1
    outputs, below = [], x
    for k in range(rnn.num_layers):
        single = torch.nn.RNN(below.shape[-1], rnn.hidden_size, nonlinearity=rnn.nonlinearity,
                              bidirectional=rnn.bidirectional)
        for suffix in ["", "_reverse"][:dirs]:
            for p in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]:
                getattr(single, f"{p}_l0{suffix}").data.copy_(getattr(rnn, f"{p}_l{k}{suffix}").data)
        below, _ = single(below, None if h0 is None else h0[k * dirs:(k + 1) * dirs])
        outputs.append(below[:, 0, :].tolist())
    return outputs


def stacked_helper_case():
    """Two forward layers built with onnx.helper: one h0 initializer of both layers' states,
    sliced per layer, the upper layer reading the lower's output through a Squeeze; each
    layer's output from onnxruntime."""
    name, i, h, o, t = "helper_two_layers_sliced_h0_i3_h5_o2", 3, 5, 2, 30
    rng = np.random.default_rng(21)
    inits = [numpy_helper.from_array((rng.standard_normal((2, 1, h)) * 0.5).astype(np.float32), "h0"),
             numpy_helper.from_array(np.array([1], np.int64), "squeeze_axes")]
    nodes = []
    below = "x"
    for k in range(2):
        inputs = i if k == 0 else h
        for tensor, shape in [("W", (1, h, inputs)), ("R", (1, h, h)), ("B", (1, 2 * h))]:
            scale = 0.1 if tensor == "B" else 1 / np.sqrt(inputs + h)
            inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), f"l{k}.{tensor}"))
        for bound, value in [("start", k), ("end", k + 1)]:
            inits.append(numpy_helper.from_array(np.array([value], np.int64), f"l{k}.{bound}"))
        nodes += [
            helper.make_node("Slice", ["h0", f"l{k}.start", f"l{k}.end"], [f"l{k}.h0"]),
            helper.make_node("RNN", [below, f"l{k}.W", f"l{k}.R", f"l{k}.B", "", f"l{k}.h0"], [f"l{k}.y"],
                             name=f"layer{k}", hidden_size=h),
            helper.make_node("Squeeze", [f"l{k}.y", "squeeze_axes"], [f"l{k}.out"]),
        ]
        below = f"l{k}.out"
    w_y = (rng.standard_normal((h, o)) / np.sqrt(h)).astype(np.float32)
    inits += [numpy_helper.from_array(w_y, "head.W"), numpy_helper.from_array(np.full(o, 0.1, np.float32), "head.b")]
    nodes += [helper.make_node("MatMul", [below, "head.W"], ["mm"]),
              helper.make_node("Add", ["mm", "head.b"], ["logits"])]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [t, 1, h]) for n in ["l0.out", "l1.out"]]
    outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, [t, 1, o]))
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [t, 1, i])],
                              outputs, inits)
    model = helper.make_model(graph, producer_name="onnx.helper", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    xs = rng.standard_normal((t, 1, i)).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    lower, upper, logits = session.run(None, {"x": xs})
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(model, OUT / f"{name}.onnx")
    case = {"name": name, "source": f"onnx {onnx.__version__} helper, onnxruntime {ort.__version__}",
            "expect": "loads", "xs": xs[:, 0, :].tolist(), "hs": upper[:, 0, :].tolist(),
            "layers": [lower[:, 0, :].tolist(), upper[:, 0, :].tolist()],
            "ys": logits[:, 0, :].tolist(), "h0": inits[0].float_data[:] or np.frombuffer(inits[0].raw_data, np.float32).tolist()}
    (OUT / f"{name}.json").write_text(json.dumps(case))
    print("wrote", name)


def refused_cases():
    """Graphs that onnxruntime runs and the loader must refuse: the RNN's input computed by an
    operator the crate does not run, two RNNs that are not one stack, and a Transpose that
    reorders a bidirectional node's output before its readout."""
    rng = np.random.default_rng(20)
    i, h, t = 3, 4, 6

    def rnn(name, x, dirs=1):
        w = numpy_helper.from_array((rng.standard_normal((dirs, h, i)) * 0.5).astype(np.float32), f"{name}.W")
        r = numpy_helper.from_array((rng.standard_normal((dirs, h, h)) * 0.3).astype(np.float32), f"{name}.R")
        attrs = {"hidden_size": h} | ({"direction": "bidirectional"} if dirs == 2 else {})
        node = helper.make_node("RNN", [x, w.name, r.name], [f"{name}.y"], name=name, **attrs)
        return node, [w, r]

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [t, 1, i])
    cases = {}
    node, inits = rnn("rnn0", "x_relu")
    cases["helper_fed_by_relu_i3_h4"] = (
        [helper.make_node("Relu", ["x"], ["x_relu"], name="relu0"), node], inits,
        [helper.make_tensor_value_info("rnn0.y", TensorProto.FLOAT, [t, 1, 1, h])], "Unsupported")
    a, a_inits = rnn("rnn_a", "x")
    b, b_inits = rnn("rnn_b", "x")
    cases["helper_two_rnns_i3_h4"] = (
        [a, b], a_inits + b_inits,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [t, 1, 1, h]) for n in ["rnn_a.y", "rnn_b.y"]],
        "ManyRnns")
    node, inits = rnn("rnn0", "x", dirs=2)
    w_y = numpy_helper.from_array((rng.standard_normal((2 * h, 2)) * 0.5).astype(np.float32), "head.W")
    shape = numpy_helper.from_array(np.array([t, 2 * h], np.int64), "shape")
    cases["helper_reordering_transpose_i3_h4_o2"] = (
        [node, helper.make_node("Transpose", ["rnn0.y"], ["yt"], name="swap", perm=[1, 0, 2, 3]),
         helper.make_node("Reshape", ["yt", "shape"], ["y2"]),
         helper.make_node("MatMul", ["y2", "head.W"], ["mm"]),
         helper.make_node("Add", ["mm", "head.b"], ["logits"])],
        inits + [w_y, shape, numpy_helper.from_array(np.zeros(2, np.float32), "head.b")],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [t, 2])], "Unsupported")
    for name, (nodes, inits, outputs, expect) in cases.items():
        graph = helper.make_graph(nodes, name, [x], outputs, inits)
        model = helper.make_model(graph, producer_name="onnx.helper", opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        xs = rng.standard_normal((t, 1, i)).astype(np.float32)
        # onnxruntime runs each of them: they are models, only not ones the crate can run.
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        session.run(None, {"x": xs})
        write(name, model, {"x": xs}, xs[:, 0, :], expect)
        print("wrote", name)


def main():
    cases = [
        ("helper_forward_i3_h4_o2", dict(i=3, h=4, o=2, t=20, seed=1), "loads"),
        ("helper_relu_i2_h8_o3", dict(i=2, h=8, o=3, t=50, seed=2, activation="Relu"), "loads"),
        ("helper_no_bias_h0_i5_h16_o4", dict(i=5, h=16, o=4, t=300, seed=3, bias=False, h0="initializer"), "loads"),
        ("helper_input_h0_i4_h6_o3", dict(i=4, h=6, o=3, t=30, seed=4, h0="input"), "loads"),
        ("helper_zeros_i3_h5_o2", dict(i=3, h=5, o=2, t=25, seed=5, h0="zeros_subgraph"), "loads"),
        ("helper_f16_weights_i3_h4_o2", dict(i=3, h=4, o=2, t=20, seed=6, weight_dtype=np.float16), "loads"),
        ("helper_reverse_i3_h4_o2", dict(i=3, h=4, o=2, t=30, seed=7, direction="reverse", h0="initializer"), "loads"),
        ("helper_bidirectional_i3_h4", dict(i=3, h=4, o=2, t=40, seed=9, direction="bidirectional", readout=None, h0="initializer"), "loads"),
        ("helper_clip_i3_h4_o2", dict(i=3, h=4, o=2, t=10, seed=8, clip=1.0), "Unsupported"),
        ("helper_gemm_i3_h4_o2", dict(i=3, h=4, o=2, t=25, seed=10, readout="gemm"), "loads"),
        # Large enough (100 KiB of weights) that a load by value shows its stack use.
        ("helper_forward_i64_h128_o4", dict(i=64, h=128, o=4, t=8, seed=11), "loads"),
        # onnxruntime runs no layout-1 RNN: this file is checked against its layout-0 twin,
        # helper_forward_i3_h4_o2 (the same seed, so the same weights).
        ("helper_layout1_i3_h4_o2", dict(i=3, h=4, o=2, t=20, seed=1, layout=1), "same weights"),
    ]
    for name, kwargs, expect in cases:
        model, feeds, xs = rnn_model(name, **kwargs)
        write(name, model, feeds, xs, expect)
        print("wrote", name)
    stacked_helper_case()
    refused_cases()
    torch_cases()
    try:
        torch_head_cases()
    except ImportError:
        print("torch not installed: the torch head fixtures are left as they are")


if __name__ == "__main__":
    main()
