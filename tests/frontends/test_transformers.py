"""transformers vision and audio models from their default configs (no weights, nothing
downloaded) through the torch front-end: the 25 of issue #11 analyse; a few numbers are pinned
(wav2vec2's feature encoder: 400 samples / 320, the paper's figures) and a small ResNet's stages
equal gradient support."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers", reason="pip install 'rfgraph[zoo]'")

import rfgraph  # noqa: E402
from rfgraph import schema  # noqa: E402
from rfgraph.tools import catalogue  # noqa: E402
from rfgraph.tools import verify as V  # noqa: E402

MODELS = ["convnext", "convnextv2", "resnet", "regnet", "swin", "swinv2", "vit", "deit", "beit", "dinov2",
          "mobilevit", "mobilenet_v2", "efficientnet", "segformer", "dpt", "upernet", "detr", "yolos", "pvt",
          "poolformer", "cvt", "levit", "focalnet", "mask2former", "wav2vec2"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def analyse(model_type, **config):
    built = catalogue.build_source(f"hf:{model_type}", factory_args=config)
    G = rfgraph.from_torch(built.model, built.input_shapes[0])
    return built, G, rfgraph.analyze(G)


@pytest.mark.slow
@pytest.mark.parametrize("model_type", MODELS)
def test_every_model_from_its_default_config_analyses(model_type):
    built, G, a = analyse(model_type)
    for v in G:
        if G.nodes[v]["op"] == "global":
            assert G.nodes[v].get("note"), v  # every global says why
    for v, shape in G.graph["shapes"].items():  # every node torch saw as a map has torch's size
        assert a[v].n == tuple(shape), (v, a[v].n, shape)


def test_wav2vec2_feature_encoder_is_400_samples_every_320():
    # conv k/s 10/5, then 3/2 x4, 2/2 x2: jump 5*2^6 = 320, rf 10 + 2*5*(1+2+4+8) + 1*5*(16+32) = 400
    _, G, a = analyse("wav2vec2", feat_extract_norm="layer")
    rec = a.module("model.feature_extractor")
    assert (rec.rf, rec.jump, rec.n) == ((400,), (320,), (49,)) and not any(rec.is_global)
    # the default config's first layer is a group norm over time: global, and it says so
    _, G, a = analyse("wav2vec2")
    rec = a.module("model.feature_extractor")
    assert all(rec.is_global) and "group norm" in G.nodes[rec.global_from[0]]["note"]


def test_detr_mask_check_is_traced_with_fake_tensors():
    # transformers skips its `padding_mask.all()` for fake tensors: the meta trace stops there,
    # the fake one goes through; the decoder's learned queries read the whole map
    built, G, a = analyse("detr")
    rec = a[G.graph["outputs"][0]]
    assert rec.n == (1, 1) and all(rec.is_global)
    assert not any(a.module("backbone.model.layer1").is_global)


def test_upernet_is_built_with_its_segmentation_head():
    built, G, a = analyse("upernet")
    assert type(built.model).__name__ == "UperNetForSemanticSegmentation"
    assert a[G.graph["outputs"][0]].n == (224, 224)


def test_small_resnet_stages_equal_gradient_support():
    wrap = lambda factory, *args, **kw: (V.positive_model(factory, *args, **kw), "")  # noqa: E731
    config = dict(embedding_size=8, hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1], layer_type="basic")
    model = catalogue.build_source("hf:resnet", factory_args=config, make=wrap).model
    shape = (3, 96, 96)
    a = rfgraph.analyze(rfgraph.from_torch(model, shape))
    recs = {m: a.module(m) for m in ("embedder", "encoder.stages.0", "encoder.stages.1")}
    results = V.compare(model, shape, recs)
    assert all(r.ok for r in results), [r.mismatches for r in results]
    # 7/2 stem + 3/2 max pool: rf 11, jump 4; one basic block of two 3x3 at jump 4: 11 + 16 = 27
    assert (recs["embedder"].rf, recs["encoder.stages.0"].rf) == ((11, 11), (27, 27))


def test_segformer_spatial_reduction_equals_gradient_support():
    # keys and values from a stride-8 conv over 25 x 33 tokens (97 x 131 pixels) skip the last
    # token row and column: attention reads rows 0..95 and columns 0..127, not the whole input
    wrap = lambda factory, *args, **kw: (V.positive_model(factory, *args, **kw), "")  # noqa: E731
    model = catalogue.build_source("hf:segformer", make=wrap).model
    shape = (3, 97, 131)
    G = rfgraph.from_torch(model, shape)
    a = rfgraph.analyze(G)
    names = [m for m, _ in model.named_modules() if m.endswith(  # modules whose output is a map
        ("stages.0.blocks.1.attention.sequence_reduction.sequence_reduction", "stages.0.blocks.1.mlp.dwconv.dwconv",
         "stages.1.blocks.0.mlp.dwconv.dwconv"))]
    assert len(names) == 3 and names[0].endswith("sequence_reduction"), names
    recs = {m: a.module(m) for m in names}
    results = V.compare(model, shape, recs, layouts=schema.module_layouts(G))
    assert all(r.ok for r in results), [r.mismatches for r in results]
    assert not any(a.module(names[0]).is_global)
