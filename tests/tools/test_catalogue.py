"""rfgraph.tools.catalogue: which models, at which input size, and the one builder."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from rfgraph.tools import catalogue  # noqa: E402


def test_list_zoo_patterns_and_sizes():
    names = [e.name for e in catalogue.list_zoo("classification", "resnet1*,vgg11")]
    assert names == ["resnet101", "resnet152", "resnet18", "vgg11"]
    [inc] = catalogue.list_zoo("classification", "inception_v3")
    assert inc.input_shape == (3, 299, 299)
    [r] = catalogue.list_zoo("classification", "resnet18", input_size=320)
    assert r.input_shape == (3, 320, 320)
    assert len(catalogue.list_zoo("classification")) == 80
    with pytest.raises(ValueError, match="unknown family"):
        catalogue.list_zoo("audio")


def test_entries_of_other_families():
    [det] = catalogue.list_zoo("detection", "fasterrcnn_resnet50_fpn")
    assert (det.input_shape, det.part, det.label) == ((3, 800, 800), "backbone", "fasterrcnn_resnet50_fpn.backbone")
    [flow] = catalogue.list_zoo("optical_flow", "raft_small")
    assert flow.n_inputs == 2 and flow.trace_shape() == [(3, 224, 224)] * 2
    [vid] = catalogue.list_zoo("video", "r3d_18")
    assert vid.trace_shape((64, 64)) == (3, 16, 64, 64)


def test_build_kwargs_download_nothing():
    assert catalogue.build_kwargs("resnet18") == {"weights": None}
    # a segmentation model's backbone would otherwise load ImageNet weights
    assert catalogue.build_kwargs("fcn_resnet50") == {"weights": None, "weights_backbone": None}
    assert catalogue.build_kwargs("googlenet")["init_weights"] is False
    assert catalogue.family_of("fcn_resnet50") == "segmentation" and catalogue.family_of("no_such_net") is None


def test_build_model_on_meta_and_a_part():
    model = catalogue.build_model("resnet18")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    [det] = catalogue.list_zoo("detection", "fasterrcnn_mobilenet_v3_large_320_fpn")
    backbone = catalogue.build(det)
    assert type(backbone).__name__ == "BackboneWithFPN"
    # another maker, e.g. the gradient-support check's positive float64 model
    made = []
    catalogue.build_model("alexnet", make=lambda factory, name, **kw: made.append((name, kw)) or torch.nn.Identity())
    assert made == [("alexnet", {"weights": None})]


def test_the_cli_builds_through_the_catalogue(monkeypatch):
    from rfgraph import cli

    built = []
    real = catalogue.build_model
    monkeypatch.setattr(catalogue, "build_model", lambda name, **kw: built.append(name) or real(name, **kw))
    G = cli.load_target("torchvision:alexnet", input_size=(64,))
    assert built == ["alexnet"] and len(G) > 10
