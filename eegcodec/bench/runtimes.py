"""Where a token model's time goes, and which runtime runs it fastest:
``eegcodec bench runtimes [--model mc-small] [--channels 64] [--onnx] [--compile]``.

Times the DAC-MC encoder (to latents) and decoder (from latents) on one chunk of random
codec-domain EEG (``chunk_seconds + overlap_seconds`` of the model's adapter, ``--channels``
channels named from the model's electrode table), best of ``--repeats``, with torch's threads as set. With
``--onnx`` the same two graphs exported by ``torch.onnx.export`` (opset 17, dynamic channels and
length) and run by ONNX Runtime's CPU provider (all graph optimisations, as many intra-op
threads), and whether its codes equal torch's; with ``--dac-snake`` torch runs DAC's own Snake
activation instead of the one-buffer version the inference codecs use; with ``--compile`` the decoder under
``torch.compile`` (its compile time printed apart). ONNX Runtime and ONNX are not dependencies:
``--onnx`` needs them installed. Prints JSON.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

HELP = "where a token model's time goes: encoder and decoder under torch, ONNX Runtime, torch.compile (JSON)"
INPUTS = None
OUT = False


def add_arguments(parser) -> None:
    parser.add_argument(
        "--model", default="default", help="model name or weights file (default: %(default)s)"
    )
    parser.add_argument("--channels", type=int, default=64, help="channels (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="runs, best reported (default: %(default)s)")
    parser.add_argument("--onnx", action="store_true", help="also ONNX Runtime (needs onnx and onnxruntime)")
    parser.add_argument("--compile", action="store_true", help="also the decoder under torch.compile")
    parser.add_argument("--dac-snake", action="store_true", help="time DAC's own Snake activation instead")


def main(args, say) -> None:
    res = run(args.model, args.channels, args.repeats, args.onnx, args.compile, args.dac_snake)
    print(json.dumps(res, indent=1))


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _graph(model, method: str):
    """One method of ``model`` as the module ``torch.onnx.export`` traces (weights as parameters)."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            return getattr(self.model, method)(*args)

    return Graph()


def _onnx(model, x, emb, zq, depth: int, repeats: int, threads: int) -> dict:
    """ONNX Runtime timings of the encoder and decoder graphs, and codes agreement with torch."""
    import numpy as np
    import onnxruntime as ort
    import torch

    folder = Path(tempfile.mkdtemp(prefix="eegcodec-onnx-"))
    graphs = {
        "encoder": ("encode_latents", (x, emb), ["x", "emb"], {"x": {1: "C", 2: "T"}, "emb": {1: "C"}}),
        "decoder": (
            "decode_latents",
            (zq, emb),
            ["zq", "emb"],
            {"zq": {1: "S", 3: "F"}, "emb": {1: "C"}},
        ),
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    out = {}
    for name, (method, args, inputs, axes) in graphs.items():
        path = folder / f"{name}.onnx"
        torch.onnx.export(
            _graph(model, method),
            args,
            path,
            input_names=inputs,
            dynamic_axes=axes,
            dynamo=False,
            opset_version=17,
        )
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {k: v.detach().numpy() for k, v in zip(inputs, args)}
        out[f"onnx_{name}_s"] = _best(lambda s=session, f=feed: s.run(None, f), repeats)
        if name == "encoder":
            lat = torch.from_numpy(session.run(None, feed)[0])
            with torch.inference_mode():
                _, codes, *_ = model.quantize(lat[0], lat.shape[1], depth)
                _, ref, *_ = model.quantize(model.encode_latents(x, emb)[0], lat.shape[1], depth)
            out["onnx_codes_equal_fraction"] = float(np.mean(codes.numpy() == ref.numpy()))
    return out


def run(
    model_name: str, channels: int, repeats: int, onnx: bool, compile_: bool, dac_snake: bool = False
) -> dict:
    import torch

    from ..backends.registry import load_codec

    codec = load_codec(model_name)
    model, adapter = codec.model, codec.info.adapter
    if dac_snake:  # DAC's own Snake instead of the inference codecs' one-buffer version
        for m in model.modules():
            vars(m).pop("forward", None)
    hop = codec.info.hop_length
    n = int((adapter.chunk_seconds + adapter.overlap_seconds) * adapter.model_rate) // hop * hop
    names = list(codec.position_table)[:channels]  # electrodes the model knows (DAC-MC)
    x = torch.randn(1, len(names), n, generator=torch.Generator().manual_seed(0)) * adapter.target_std
    emb = codec._emb(codec.montage(names)).detach()
    depth = codec.info.default_codebooks
    with torch.inference_mode():
        codes = codec.encode_channels(x[0].numpy(), depth, codec.montage(names))
        zq = codec.codes_to_latents(codes)[None]
        res = {
            "model": codec.info.name,
            "channels": len(names),
            "chunk_samples": n,
            "chunk_seconds": n / adapter.model_rate,
            "torch_threads": torch.get_num_threads(),
            "snake": "dac" if dac_snake else "one buffer",
            "torch_encoder_s": _best(lambda: model.encode_latents(x, emb), repeats),
            "torch_decoder_s": _best(lambda: model.decode_latents(zq, emb), repeats),
        }
    if onnx:
        res.update(_onnx(model, x, emb, zq, depth, repeats, torch.get_num_threads()))
    if compile_:
        t = time.perf_counter()
        compiled = torch.compile(model.decode_latents)
        with torch.no_grad():
            compiled(zq, emb)
            res["compile_first_call_s"] = time.perf_counter() - t
            res["compiled_decoder_s"] = _best(lambda: compiled(zq, emb), repeats)
    return res
