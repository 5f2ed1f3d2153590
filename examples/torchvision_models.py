"""torchvision's ResNet-50 and Inception v3: stage tables, a diagram and an overlay picture.

Models are built with ``weights=None`` on the meta device: nothing is downloaded and no memory is
spent on weights or activations. Pictures go to ``out/`` (the diagram needs Graphviz's ``dot``).
Run: ``python examples/torchvision_models.py``.
"""

import os
import warnings

import torch
import torchvision

import rfgraph

OUT = os.environ.get("RFGRAPH_OUT", "out")


def stage_table(model, input_shape, stages):
    a = rfgraph.analyze(model, input_shape=input_shape)
    rows = [a.module(s) for s in stages]
    print(rfgraph.format_table(a, [r.name for r in rows]))
    return a


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    with torch.device("meta"):
        resnet = torchvision.models.resnet50(weights=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torchvision's notice about init weights
            inception = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)

    print("ResNet-50 at 224x224, one row per stage:")
    a = stage_table(resnet, (3, 224, 224), ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4"])
    print("\nInception v3 at 299x299:")
    b = stage_table(inception, (3, 299, 299), ["Conv2d_4a_3x3", "maxpool2", "Mixed_5d", "Mixed_6e", "Mixed_7c"])

    rfgraph.overlay(a, a.module("layer2").name, os.path.join(OUT, "resnet50_layer2_overlay.svg"))
    print(f"\noverlay of three layer2 features: {OUT}/resnet50_layer2_overlay.svg")
    try:
        rfgraph.write_diagram(a, os.path.join(OUT, "resnet50.svg"))
        rfgraph.write_diagram(b, os.path.join(OUT, "inception_v3.svg"))
        print(f"diagrams: {OUT}/resnet50.svg, {OUT}/inception_v3.svg")
    except rfgraph.RFGraphError as exc:  # no `dot` binary: the .dot source is still written
        print(f"diagram not rendered ({exc}); DOT source in {OUT}/")
