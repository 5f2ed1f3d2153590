"""rfgraph.answers.streaming on real 1-D networks: past/future context and causality, checked by
perturbing one input sample of the real network (float64) and seeing which outputs move."""

import json

import pytest

import rfgraph
from rfgraph.answers import AnswerError
from rfgraph.answers.streaming import streaming, to_json

torch = pytest.importorskip("torch")
import nets  # noqa: E402


def moved(model, length, t):
    """Output positions that change at all when input sample ``t`` changes (outside its reach the
    same arithmetic runs on the same numbers: exactly equal)."""
    x = torch.randn(1, 1, length, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[..., t] += 1.0
    with torch.no_grad():
        d = (model(x) - model(y)).abs()[0].amax(0)
    return torch.nonzero(d > 0).flatten().tolist()


def reach(model, length, outputs):
    """``(past, future)``: the farthest the gradient support of each of ``outputs`` reaches
    before and after it (float64 keeps the far taps' tiny products non-zero; over several outputs
    because a ReLU that happens to be off can hide a tap of one)."""
    x = torch.randn(1, 1, length, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    y = model(x)
    past = future = -length
    for t in outputs:
        (g,) = torch.autograd.grad(y[..., t].sum(), x, retain_graph=True)
        seen = torch.nonzero(g[0, 0]).flatten()
        past, future = max(past, t - int(seen[0])), max(future, int(seen[-1]) - t)
    return past, future


def test_wavenet_is_causal_with_rf_3070():
    model = nets.seeded(nets.WaveNet)
    s = streaming(model, sample_rate=16000, input_shape=(1, 4096))
    [out] = s.outputs
    c = s.nodes[out]
    # 3 stacks of kernel-2 convs dilated 1..512: 3 * (1 + 2 + ... + 512) + 1 = 3 * 1023 + 1
    assert (c.rf, c.jump, c.past, c.future) == (3070, 1, 3069, 0)
    assert s.causal and s.latency == 0
    assert s.seconds(c.rf) == pytest.approx(0.191875)
    assert moved(model, 4096, 500)[0] == 500      # no output before sample 500 moves: causal
    assert reach(model, 4096, [3600]) == (c.past, c.future)   # output 3600 reads samples 531 .. 3600


def test_tcn_is_not_causal():
    model = nets.seeded(nets.TCN)
    s = streaming(model, input_shape=(1, 256))
    c = s.nodes[s.outputs[0]]
    # each block: two k3 convs dilated d, d samples each side each: 2 * (1 + 2 + 4 + 8) = 30
    assert (c.past, c.future) == (30, 30) and s.latency == 30 and s.causal is False
    assert reach(model, 256, range(90, 110)) == (30, 30)


def wav2vec2(**config):
    transformers = pytest.importorskip("transformers", reason="transformers is not installed "
                                       "(pip install 'rfgraph[transformers]')")

    class Raw(torch.nn.Module):  # the encoder takes (batch, samples); rfgraph traces (batch, 1, samples)
        def __init__(self):
            super().__init__()
            with torch.device("meta"):  # no weights, nothing downloaded
                self.fe = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**config)).feature_extractor

        def forward(self, x):
            return self.fe(x[:, 0])

    return Raw().eval()


def test_wav2vec2_feature_encoder_25ms_rf_20ms_hop():
    s = streaming(wav2vec2(feat_extract_norm="layer"), sample_rate=16000, input_shape=(1, 16000))
    c = s.nodes[s.outputs[0]]
    # conv k/s 10/5, 3/2 x4, 2/2 x2: jump 5 * 2**6 = 320; rf 10 + 5*(2*4 + ... ) = 400 (the paper)
    assert (c.rf, c.jump) == (400, 320)
    assert (s.seconds(c.rf), s.seconds(c.jump)) == (0.025, 0.02)
    # frame i reads samples 320 i .. 320 i + 399: 80 past its hop (5 ms look-ahead)
    assert (c.past, c.future) == (0, 80) and not s.causal


def test_wav2vec2_group_norm_over_time_is_global():
    s = streaming(wav2vec2(), sample_rate=16000, input_shape=(1, 16000))
    c = s.nodes[s.outputs[0]]
    assert c.past is None and c.future is None and s.latency is None and s.causal is None
    assert c.global_from == "fe.conv_layers.0.layer_norm"   # GroupNorm(512, 512) over time


def test_streaming_needs_one_axis():
    with pytest.raises(AnswerError, match="1-D network"):
        streaming(rfgraph.chain([("c", "conv", 3, 1, 1)], (8, 8)))


def test_cli_analyze_with_sample_rate_json(capsys, tmp_path):
    from rfgraph.cli import main
    from rfgraph.frontends.spec import write_spec

    spec = tmp_path / "net.json"
    write_spec(rfgraph.chain([("c", "conv", 3, 1, [(2, 0)]), ("d", "conv", 5, 2, 2)], (64,)), spec)
    assert main(["analyze", str(spec), "--sample-rate", "16000", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(n["name"], n["past"], n["future"]) for n in doc["nodes"]] == [
        ("input", 0, 0), ("c", 2, 0), ("d", 4, 1)]
    assert doc["causal"] is False and doc["nodes"][2]["seconds"]["jump"] == 2 / 16000
    assert main(["analyze", str(spec), "--sample-rate", "16000"]) == 0
    assert "look-ahead (latency) 1 samples = 0.0625 ms" in capsys.readouterr().out
    assert json.loads(to_json(rfgraph.analyze(rfgraph.read_spec(spec))))["sample_rate"] is None
