"""Export PyTorch models and their outputs as the parity fixtures in tests/fixtures/torch/.

For each case: `<name>.safetensors`, the model's state_dict as a PyTorch user saves it
(`safetensors.torch.save_file(model.state_dict(), path)`; keys `rnn.*` and `head.*`), and
`<name>.json`, the configuration, the inputs and PyTorch's float32 results: the initial state of
each layer, each layer's hidden state after every step (`hs[layer][t]`), the head's logits,
softmax and arg-max. Layer k's states come from running the stacked `nn.RNN` layer by layer on
single-layer modules that share its weights, which the script checks gives the stacked module's
output bit for bit.

Also `dtypes.safetensors`: one small model's tensors in f64, f16 and bf16, with their values
rounded to each dtype in `dtypes.json`, for the loader's conversions.

Run: python scripts/export_fixtures.py   (pinned requirements: scripts/requirements-fixtures.txt;
CPU only). The tests read the committed files; they never run Python.
"""

import json
from pathlib import Path

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
    export_dtypes()


if __name__ == "__main__":
    main()
