"""timm models through the torch front-end: a handful across families analyse quickly, with
stage RFs equal to gradient support on small ones; a wider sample (one model per family) is slow.

The whole zoo is benchmarks/zoo_timm.py (results in benchmarks/results/timm.md)."""

import re

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

import rfgraph  # noqa: E402
from rfgraph.tools import catalogue  # noqa: E402
from rfgraph.tools import verify as V  # noqa: E402


def analyse(name, shape, **kwargs):
    built = catalogue.build_source(f"timm:{name}", factory_args=kwargs)
    G = rfgraph.from_torch(built.model, shape)
    return G, rfgraph.analyze(G)


def oracle(name, shape, modules, **kwargs):
    """rfgraph's records of ``modules`` on the real (positive, float64) model, compared with its
    gradient support."""
    wrap = lambda factory, *a, **kw: (V.positive_model(factory, *a, **kw), "")  # noqa: E731
    model = catalogue.build_source(f"timm:{name}", factory_args=kwargs, make=wrap).model
    a = rfgraph.analyze(rfgraph.from_torch(model, shape))
    recs = {m: a.module(m) for m in modules}
    results = V.compare(model, shape, recs)
    assert all(r.ok for r in results), [r.mismatches for r in results]
    return recs


def test_resnet_stages_equal_gradient_support():
    recs = oracle("resnet18", (3, 96, 96), ["layer1", "layer2"])
    # 7/2 stem (rf 7), maxpool 3/2 (11), layer1's four 3x3 at jump 4 (+32 = 43); layer2 + 56 = 99
    assert (recs["layer1"].rf, recs["layer1"].jump) == ((43, 43), (4, 4))
    assert (recs["layer2"].rf, recs["layer2"].jump) == ((99, 99), (8, 8))


def test_tresnet_space_to_depth_stem_is_exact():
    # view/permute/view space-to-depth by 4 gathers each 4x4 block (rf 4, jump 4, start 2.0), then
    # a 3x3 conv at jump 4: rf 4 + 2*4 = 12 (the gradient-support figure)
    recs = oracle("tresnet_m", (3, 64, 64), ["body.s2d", "body.conv1"])
    rec = recs["body.conv1"]
    assert (rec.rf, rec.jump, rec.start, rec.n) == ((12, 12), (4, 4), (2.0, 2.0), (16, 16))
    assert not any(rec.is_global)


def test_convnext_stages_equal_gradient_support():
    recs = oracle("convnext_atto", (3, 64, 64), ["stem", "stages.0"])
    # 4x4/4 patchify stem (rf 4), then two 7x7 depthwise convs at jump 4: 4 + 2*6*4 = 52
    assert (recs["stem"].rf, recs["stem"].jump) == ((4, 4), (4, 4))
    assert (recs["stages.0"].rf, recs["stages.0"].jump) == ((52, 52), (4, 4))


def test_halo_attention_unfold_is_a_window():
    # halo attention's kv windows are Tensor.unfold: a window op, not an unsupported op
    G, a = analyse("halonet26t", (3, 256, 256))
    assert any(G.nodes[v].get("target") == "aten::unfold" and G.nodes[v]["op"] == "conv" for v in G)
    assert not any(a.module("stages.1").is_global)


def test_eca_conv_over_channels_leaves_positions_alone():
    G, a = analyse("ecaresnet26t", (3, 64, 64))
    eca = [v for v in G if G.nodes[v].get("module", "").endswith("se.conv")]
    assert eca and all(G.nodes[v]["op"] == "identity" for v in eca)
    # ECA's gate is a global average: honestly global from its mean
    rec = a.module("layer1")
    assert all(rec.is_global) and rec.global_from[0].endswith("se.mean")


@pytest.mark.parametrize("name, shape, kwargs", [
    ("efficientnet_b0", (3, 64, 64), {}),
    ("vit_tiny_patch16_224", (3, 64, 64), {"img_size": 64}),
    ("swin_tiny_patch4_window7_224", (3, 224, 224), {}),
    ("crossvit_tiny_240", (3, 240, 240), {}),
    ("bat_resnext26ts", (3, 256, 256), {}),
])
def test_analyses_with_named_global_reasons(name, shape, kwargs):
    G, a = analyse(name, shape, **kwargs)
    for v in G:
        if G.nodes[v]["op"] == "global":
            assert G.nodes[v].get("note"), v  # every global says why
    # the stem / patch embedding is local
    first = next(v for v in a.order if G.nodes[v]["op"] == "conv")
    assert not any(a[first].is_global)


def _one_per_family(limit=45):
    seen, out = set(), []
    for name in timm.list_models():
        family = re.split(r"[_\d]", name)[0]
        if family not in seen:
            seen.add(family)
            out.append(name)
    return out[:limit]


@pytest.mark.slow
@pytest.mark.parametrize("name", _one_per_family())
def test_timm_family_sample_analyses(name):
    from rfgraph.tools.runner import summarize

    [entry] = catalogue.list_timm(name)
    row = summarize(entry)
    assert row.ok, row.error
    if row.is_global and any(row.is_global):
        assert row.global_why or not row.global_from


def test_volo_outlook_attention_is_exact_and_class_attention_global():
    # outlook attention is unfold, a per-block product over the 3x3 offsets, fold: exact
    G, a = analyse("volo_d1_224", (3, 224, 224))
    assert not any(a.module("network.1").is_global)  # the outlooker stage
    folds = [v for v in G if G.nodes[v].get("target") == "aten::col2im"]
    assert folds and all(G.nodes[v]["op"] == "convtranspose" for v in folds)


def test_sequencer2d_lstms_are_one_node_each_and_global_along_their_axis():
    # each LSTM is one node (not its unrolled time steps, which took 5.4 s for sequencer2d_l)
    G, a = analyse("sequencer2d_s", (3, 224, 224))
    lstms = [v for v in G if G.nodes[v].get("target") == "aten::lstm"]
    assert len(lstms) == 2 * 18 and len(G) < 600  # 18 blocks (4 + 3 + 8 + 3)
    block = "stages.0.blocks.0.rnn_tokens"
    assert a.module(f"{block}.rnn_v").is_global == (True, False)
    assert a.module(f"{block}.rnn_h").is_global == (False, True)


def test_swin_and_maxvit_window_attention_is_local():
    # swin_tiny at 224: 4x4 patches (jump 4), windows of 7 tokens: block 0 reads its 28 x 28 pixels
    G, a = analyse("swin_tiny_patch4_window7_224", (3, 224, 224))
    rec = a.module("layers.0.blocks.0")
    assert (rec.n, rec.rf, rec.jump) == ((56, 56), (28, 28), (4, 4)) and not any(rec.is_global)
    # only the last stage, whose one window is the whole 7 x 7 map, attends globally
    attn = {G.nodes[v]["module"].split(".blocks")[0] for v in G
            if G.nodes[v]["op"] == "global" and "attention" in G.nodes[v].get("note", "")}
    assert attn == {"layers.3"}
    # maxvit: besides the SE gates, only the last stage (7 x 7 = one 7 x 7 window or grid) is global
    G, a = analyse("maxvit_tiny_tf_224", (3, 224, 224))
    attn = {G.nodes[v]["module"].split(".blocks")[0] for v in G
            if G.nodes[v]["op"] == "global" and "mean over spatial positions" not in G.nodes[v]["note"]}
    assert attn == {"stages.3"}


def test_channels_last_stages_are_maps():
    # Swin's stages are (N, H, W, C): their outputs are maps (module shapes), so the zoo's final
    # map is the last stage's norm (7x7), not the patch embedding
    from rfgraph import schema
    from rfgraph.tools.runner import final_map

    with torch.device("meta"):
        model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False).eval()
    G = rfgraph.from_torch(model, (1, 3, 224, 224))
    a = rfgraph.analyze(G)
    mods = schema.module_outputs(G)
    assert schema.shapes(G)[mods["layers.0"]] == (56, 56)
    node, module = final_map(a, G)
    assert module == "norm" and a[node].n == (7, 7)
