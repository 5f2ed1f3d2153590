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


def test_list_source_and_smp():
    pytest.importorskip("timm")
    both = catalogue.list_source("all", pattern="resnet18")
    assert [(e.source, e.family, e.name) for e in both] == [("torchvision", "classification", "resnet18"),
                                                            ("timm", "timm", "resnet18")]
    [tv] = catalogue.list_source("torchvision", "segmentation", "fcn_resnet50")
    assert tv.input_shape == (3, 520, 520)
    with pytest.raises(ValueError, match="unknown zoo source 'keras'"):
        catalogue.list_source("keras")
    pytest.importorskip("segmentation_models_pytorch")
    smp = catalogue.list_smp()
    archs = {e.name.split(":")[0] for e in smp}
    assert {"Unet", "FPN", "MAnet", "DeepLabV3Plus", "PSPNet", "Linknet", "PAN", "UnetPlusPlus"} <= archs
    assert len(smp) == 3 * len(archs) and all(e.source == "smp" and e.family == "smp" for e in smp)
    [unet] = catalogue.list_smp("Unet:resnet34", input_size=128)
    assert unet.input_shape == (3, 128, 128)
    model = catalogue.build(unet)
    assert type(model).__name__ == "Unet" and {p.device.type for p in model.parameters()} == {"meta"}


def test_meta_builds_skip_value_writes_only():
    # a library's own initialiser (timm's trunc_normal_ is uniform_/erfinv_/mul_/add_/clamp_) has
    # nothing to do on meta; an op that changes the shape still runs
    seen = []

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.empty(4, 3))
            self.w.uniform_(-1, 1).erfinv_().mul_(2.0).clamp_(min=-1, max=1)
            b = torch.empty(4)
            b.unsqueeze_(0)
            seen.append((self.w.device.type, tuple(b.shape)))

    model, note = catalogue._meta_or_cpu(Net)
    assert seen == [("meta", (1, 4))] and note == "" and model.w.is_meta
    # off the meta device the ops run
    w = torch.zeros(3)
    with catalogue._no_init_on_meta():
        w.add_(1.0)
    assert w.tolist() == [1.0, 1.0, 1.0]


def test_a_factory_entry_builds_from_its_own_target(tmp_path):
    (tmp_path / "net.py").write_text("import torch\ndef make():\n    return torch.nn.Conv2d(3, 2, 3)\n")
    entry = catalogue.ZooModel(f"{tmp_path / 'net.py'}:make", "file", (3, 8, 8), source="file")
    assert isinstance(catalogue.build(entry), torch.nn.Conv2d)
