"""Export PyTorch models and their outputs as the parity fixtures in tests/fixtures/torch/.

For each case: `<name>.safetensors`, the model's state_dict as a PyTorch user saves it
(`safetensors.torch.save_file(model.state_dict(), path)`; keys `rnn.*` and `head.*`), and
`<name>.json`, the configuration, the inputs and PyTorch's float32 results: the initial state of
each layer, each layer's hidden state after every step (`hs[layer][t]`), the head's logits,
softmax and arg-max. Layer k's states come from running the stacked `nn.RNN` layer by layer on
single-layer modules that share its weights, which the script checks gives the stacked module's
output bit for bit.

Bidirectional cases (`bi_*`): `nn.RNN(bidirectional=True)` + `nn.Linear(2H, O)`, the same files with
`h0` and `h_n` as PyTorch orders them (layer 0 forward, layer 0 backward, layer 1 forward, ...),
`hs[layer][t]` the layer's output `[h_fwd; h_bwd]` at step t, and the logits `ys`. Their numbers
are written as the shortest decimals that read back to the same float32, to keep the files small.

Also `dtypes.safetensors`: one small model's tensors in f64, f16 and bf16, with their values
rounded to each dtype in `dtypes.json`, for the loader's conversions.

Run: python scripts/export_fixtures.py   (pinned requirements: scripts/requirements-fixtures.txt;
CPU only). The tests read the committed files; they never run Python.
"""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch"

# name, I, H, O, layers, nonlinearity, bias, T, nonzero h0, weight scale (1 = PyTorch's init)
CASES = [
    ("seed_tanh_i3_h2", 3, 2, 4, 1, "tanh", True, 50, True, 1.0),
    ("seed_relu_i3_h2", 3, 2, 4, 1, "relu", True, 50, False, 1.0),
    ("nobias_i1_h16_t1000", 1, 16, 3, 1, "tanh", False, 1000, True, 1.0),
    ("two_layers_i7_h13", 7, 13, 5, 2, "tanh", True, 200, True, 1.0),
    ("relu_two_layers_nobias_i1_h16", 1, 16, 3, 2, "relu", False, 300, False, 0.5),
    ("saturating_i64_h128", 64, 128, 10, 1, "tanh", True, 100, True, 4.0),
]


class Model(torch.nn.Module):
    def __init__(self, i, h, o, layers, nonlinearity, bias):
        super().__init__()
        self.rnn = torch.nn.RNN(i, h, num_layers=layers, nonlinearity=nonlinearity, bias=bias, batch_first=True)
        self.head = torch.nn.Linear(h, o)


def f32_list(t):
    return [float(v) for v in t.reshape(-1).tolist()] if t.dim() <= 1 else [f32_list(r) for r in t]


def export(name, i, h, o, layers, nonlinearity, bias, steps, nonzero_h0, scale, seed):
    torch.manual_seed(seed)
    model = Model(i, h, o, layers, nonlinearity, bias)
    with torch.no_grad():
        for p in model.rnn.parameters():
            p.mul_(scale)
    xs = torch.randn(1, steps, i)
    h0 = torch.randn(layers, 1, h) * 0.5 if nonzero_h0 else torch.zeros(layers, 1, h)
    with torch.no_grad():
        stacked, _ = model.rnn(xs, h0)
        # Layer by layer, on single-layer modules holding each layer's weights.
        per_layer = []
        inputs = xs
        for k in range(layers):
            single = torch.nn.RNN(i if k == 0 else h, h, nonlinearity=nonlinearity, bias=bias, batch_first=True)
            single.weight_ih_l0.copy_(getattr(model.rnn, f"weight_ih_l{k}"))
            single.weight_hh_l0.copy_(getattr(model.rnn, f"weight_hh_l{k}"))
            if bias:
                single.bias_ih_l0.copy_(getattr(model.rnn, f"bias_ih_l{k}"))
                single.bias_hh_l0.copy_(getattr(model.rnn, f"bias_hh_l{k}"))
            out, _ = single(inputs, h0[k : k + 1])
            per_layer.append(out[0])
            inputs = out
        assert torch.equal(per_layer[-1], stacked[0]), f"{name}: layer-by-layer differs from the stack"
        ys = model.head(stacked[0])
        probs = torch.softmax(ys, dim=-1)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, OUT / f"{name}.safetensors")
    saturated = float((stacked.abs() > 0.999).float().mean())
    fixture = {
        "name": name,
        "source": f"torch {torch.__version__} nn.RNN + nn.Linear, float32, CPU",
        "input_size": i,
        "hidden_size": h,
        "output_size": o,
        "num_layers": layers,
        "nonlinearity": nonlinearity,
        "bias": bias,
        "seq_len": steps,
        "weight_scale": scale,
        "seed": seed,
        "fraction_saturated": saturated,
        "xs": f32_list(xs[0]),
        "h0": [f32_list(h0[k, 0]) for k in range(layers)],
        "hs": [f32_list(out) for out in per_layer],
        "ys": f32_list(ys),
        "probs": f32_list(probs),
        "argmax": [int(v) for v in ys.argmax(dim=-1).tolist()],
    }
    (OUT / f"{name}.json").write_text(json.dumps(fixture, separators=(",", ":")))
    print(f"{name}: {steps} steps, {layers} layer(s), {saturated:.1%} of states saturated")


# name, I, H, O, layers, nonlinearity, bias, T, nonzero h0, weight scale
BIDIRECTIONAL = [
    ("bi_tanh_i3_h4", 3, 4, 3, 1, "tanh", True, 50, True, 1.0),
    ("bi_relu_nobias_i2_h5", 2, 5, 3, 1, "relu", False, 200, True, 0.5),
    ("bi_two_layers_i4_h6", 4, 6, 3, 2, "tanh", True, 200, True, 1.0),
    ("bi_relu_two_layers_nobias_i1_h8", 1, 8, 2, 2, "relu", False, 300, False, 0.5),
    ("bi_two_layers_i1_h3_t1000", 1, 3, 2, 2, "tanh", True, 1000, True, 1.0),
    ("bi_two_layers_i8_h64_t20", 8, 64, 4, 2, "tanh", True, 20, True, 1.0),
]


class BiModel(torch.nn.Module):
    def __init__(self, i, h, o, layers, nonlinearity, bias):
        super().__init__()
        self.rnn = torch.nn.RNN(i, h, num_layers=layers, nonlinearity=nonlinearity, bias=bias, batch_first=True,
                                bidirectional=True)
        self.head = torch.nn.Linear(2 * h, o)


class F32(float):
    """A float32 value that JSON writes as its shortest round-tripping decimal."""

    def __repr__(self):
        return np.format_float_scientific(np.float32(self), unique=True, trim="-")


def f32_short(t):
    return [F32(v) for v in t.reshape(-1).tolist()] if t.dim() <= 1 else [f32_short(r) for r in t]


def dump_short(value):
    """JSON with every F32 written by its __repr__ (json.dumps writes floats with float.__repr__)."""
    if isinstance(value, F32):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(dump_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump_short(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def export_bidirectional(name, i, h, o, layers, nonlinearity, bias, steps, nonzero_h0, scale, seed):
    torch.manual_seed(seed)
    model = BiModel(i, h, o, layers, nonlinearity, bias)
    with torch.no_grad():
        for p in model.rnn.parameters():
            p.mul_(scale)
    xs = torch.randn(1, steps, i)
    h0 = torch.randn(2 * layers, 1, h) * 0.5 if nonzero_h0 else torch.zeros(2 * layers, 1, h)
    with torch.no_grad():
        stacked, h_n = model.rnn(xs, h0)
        # Layer by layer, on single-layer bidirectional modules holding each layer's weights.
        per_layer, finals = [], []
        inputs = xs
        for k in range(layers):
            single = torch.nn.RNN(i if k == 0 else 2 * h, h, nonlinearity=nonlinearity, bias=bias, batch_first=True,
                                  bidirectional=True)
            for suffix in ["", "_reverse"]:
                for what in ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else []):
                    getattr(single, f"{what}_l0{suffix}").copy_(getattr(model.rnn, f"{what}_l{k}{suffix}"))
            out, last = single(inputs, h0[2 * k : 2 * k + 2])
            per_layer.append(out[0])
            finals.append(last)
            inputs = out
        assert torch.equal(per_layer[-1], stacked[0]), f"{name}: layer-by-layer differs from the stack"
        assert torch.equal(torch.cat(finals), h_n), f"{name}: layer-by-layer h_n differs from the stack"
        ys = model.head(stacked[0])
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, OUT / f"{name}.safetensors")
    saturated = float((stacked.abs() > 0.999).float().mean())
    fixture = {
        "name": name,
        "source": f"torch {torch.__version__} nn.RNN(bidirectional=True) + nn.Linear, float32, CPU",
        "input_size": i,
        "hidden_size": h,
        "output_size": o,
        "num_layers": layers,
        "nonlinearity": nonlinearity,
        "bias": bias,
        "seq_len": steps,
        "weight_scale": scale,
        "seed": seed,
        "fraction_saturated": saturated,
        "xs": f32_short(xs[0]),
        "h0": [f32_short(h0[k, 0]) for k in range(2 * layers)],
        "hs": [f32_short(out) for out in per_layer],
        "h_n": [f32_short(h_n[k, 0]) for k in range(2 * layers)],
        "ys": f32_short(ys),
    }
    (OUT / f"{name}.json").write_text(dump_short(fixture))
    print(f"{name}: {steps} steps, {layers} bidirectional layer(s), {saturated:.1%} of states saturated")


def export_dtypes():
    torch.manual_seed(7)
    cell = torch.nn.RNN(3, 2)
    head = torch.nn.Linear(2, 4)
    tensors, values = {}, {}
    for dtype, tag in [(torch.float64, "f64"), (torch.float16, "f16"), (torch.bfloat16, "bf16")]:
        for key, t in [("weight_ih_l0", cell.weight_ih_l0), ("weight_hh_l0", cell.weight_hh_l0),
                       ("bias_ih_l0", cell.bias_ih_l0), ("bias_hh_l0", cell.bias_hh_l0),
                       ("weight", head.weight), ("bias", head.bias)]:
            prefix = "rnn" if key.endswith("_l0") else "head"
            name = f"{tag}.{prefix}.{key}"
            converted = t.detach().to(dtype).contiguous()
            tensors[name] = converted
            values[name] = f32_list(converted.to(torch.float32))
    save_file(tensors, OUT / "dtypes.safetensors")
    (OUT / "dtypes.json").write_text(json.dumps(values, separators=(",", ":")))
    print("dtypes: f64, f16, bf16")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for seed, case in enumerate(CASES):
        export(*case, seed=1000 + seed)
    for seed, case in enumerate(BIDIRECTIONAL):
        export_bidirectional(*case, seed=2000 + seed)
    export_dtypes()


if __name__ == "__main__":
    main()
