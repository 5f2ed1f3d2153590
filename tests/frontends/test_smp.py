"""segmentation_models_pytorch through the torch front-end: every architecture with three encoders
analyses (built with encoder_weights=None, nothing downloaded), and Unet, FPN and MAnet records
equal gradient support on the real (positive, float64) model."""

import pytest

torch = pytest.importorskip("torch")
smp = pytest.importorskip("segmentation_models_pytorch", reason="pip install 'rfgraph[smp]'")

import rfgraph  # noqa: E402
from rfgraph.tools import catalogue  # noqa: E402
from rfgraph.tools import verify as V  # noqa: E402

ARCHS = ["Unet", "UnetPlusPlus", "MAnet", "Linknet", "FPN", "PSPNet", "DeepLabV3", "DeepLabV3Plus", "PAN",
         "UPerNet", "Segformer"]
ENCODERS = ["resnet34", "mobilenet_v2", "efficientnet-b0"]


def analyse(target, shape=None, **kwargs):
    built = catalogue.build_source(f"smp:{target}", factory_args=kwargs)
    shape = shape or built.input_shapes[0]
    G = rfgraph.from_torch(built.model, shape)
    a = rfgraph.analyze(G)
    rec = a[G.graph["outputs"][0]]
    assert rec.n == tuple(shape[1:]), (target, rec.n)  # a segmentation map: the input's size
    return G, a, rec


@pytest.mark.parametrize("encoder", ENCODERS)
def test_manet_analyses(encoder):
    # MAnet's position attention reshapes (N, H*W, C) straight to (N, C, H, W): its output is
    # global, so the scrambled positions are interchangeable and the decoder after it is a map
    G, a, rec = analyse(f"MAnet:{encoder}")
    assert all(rec.is_global)
    center = a.module("decoder.center")
    assert center.n == (8, 8) and all(center.is_global)
    assert G.nodes[G.graph["module_outputs"]["decoder.blocks.0.conv1.0"]]["op"] == "conv"


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_analyses(arch, encoder):
    analyse(f"{arch}:{encoder}")


@pytest.mark.parametrize("encoder, shape, kwargs", [("tu-resnet18", None, {"decoder_readout": "ignore"}),
                                                   ("tu-vit_tiny_patch16_224", (3, 224, 224), {})])
def test_dpt_analyses_with_timm_encoders(encoder, shape, kwargs):
    analyse(f"DPT:{encoder}", shape, **kwargs)  # a CNN encoder has no class token to read out


def oracle(target, shape, modules, **kwargs):
    wrap = lambda factory, *a, **kw: (V.positive_model(factory, *a, **kw), "")  # noqa: E731
    model = catalogue.build_source(f"smp:{target}", factory_args=kwargs, make=wrap).model
    a = rfgraph.analyze(rfgraph.from_torch(model, shape))
    recs = {m: a.module(m) for m in modules}
    results = V.compare(model, shape, recs)
    assert all(r.ok for r in results), [r.mismatches for r in results]
    return recs


def test_unet_decoder_equals_gradient_support():
    recs = oracle("Unet:resnet18", (3, 128, 128), ["decoder.blocks.0", "decoder.blocks.1", "decoder.blocks.2"],
                  encoder_depth=3, decoder_channels=(16, 8, 4))
    assert recs["decoder.blocks.2"].n == (128, 128) and not any(recs["decoder.blocks.2"].is_global)


def test_fpn_equals_gradient_support():
    recs = oracle("FPN:resnet18", (3, 128, 128), ["decoder.p4", "decoder.p3", "decoder.p2", "segmentation_head"],
                  decoder_pyramid_channels=8, decoder_segmentation_channels=32)
    assert recs["segmentation_head"].n == (128, 128)


def test_manet_equals_gradient_support():
    # the attention centre makes every feature global: bounds are the whole input
    recs = oracle("MAnet:resnet18", (3, 64, 64), ["decoder.center", "decoder.blocks.0"], encoder_depth=3,
                  decoder_channels=(16, 8, 4), decoder_pab_channels=8)
    assert all(recs["decoder.blocks.0"].is_global)
