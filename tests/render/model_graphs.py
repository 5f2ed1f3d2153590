"""Hand-built graphs shaped like torch front-end output (``module`` attributes, module_outputs),
so the renderers can be tested on ResNet/DenseNet-sized graphs without torch."""

import networkx as nx


def resnet_like(blocks=(3, 8, 36, 3), size=224):
    """A bottleneck ResNet (ResNet-152 by default): shared ``relu`` per block, called 3 times."""
    G = nx.DiGraph()
    outs = {}

    def add(name, module, **attrs):
        G.add_node(name, module=module, **attrs)
        return name

    prev = add("x", None, op="input", size=(size, size))
    for name, attrs in (("conv1", dict(op="conv", kernel=7, stride=2, padding=3)),
                        ("bn1", dict(op="identity")), ("relu", dict(op="identity")),
                        ("maxpool", dict(op="maxpool", kernel=3, stride=2, padding=1))):
        G.add_edge(prev, add(name, name, **attrs))
        prev = outs[name] = name
    for li, nblocks in enumerate(blocks, start=1):
        for b in range(nblocks):
            m = f"layer{li}.{b}"
            stride = 2 if b == 0 and li > 1 else 1
            block_in = prev
            chain = [("conv1", dict(op="conv", kernel=1)), ("bn1", dict(op="identity")),
                     ("relu", dict(op="identity")),
                     ("conv2", dict(op="conv", kernel=3, stride=stride, padding=1)),
                     ("bn2", dict(op="identity")), ("relu_1", dict(op="identity")),
                     ("conv3", dict(op="conv", kernel=1)), ("bn3", dict(op="identity"))]
            for name, attrs in chain:
                mod = f"{m}.relu" if name.startswith("relu") else f"{m}.{name}"
                node = add(f"{m}.{name}", mod, **attrs)
                G.add_edge(prev, node)
                prev = node
            short = block_in
            if b == 0:
                short = add(f"{m}.downsample.0", f"{m}.downsample.0", op="conv", kernel=1, stride=stride)
                G.add_edge(block_in, short)
                bn = add(f"{m}.downsample.1", f"{m}.downsample.1", op="identity")
                G.add_edge(short, bn)
                short = bn
            a = add(f"{m}.add", m, op="add")
            G.add_edge(prev, a, index=0)
            G.add_edge(short, a, index=1)
            prev = add(f"{m}.relu_2", f"{m}.relu", op="identity")
            G.add_edge(a, prev)
            outs[m] = prev
        outs[f"layer{li}"] = prev
    G.add_edge(prev, add("avgpool", "avgpool", op="global"))
    G.add_edge("avgpool", add("flatten", None, op="identity"))
    G.add_edge("flatten", add("fc", "fc", op="identity"))
    outs["avgpool"], outs["fc"] = "avgpool", "fc"
    G.graph["module_outputs"] = outs
    return G


def densenet_like(blocks=(6, 12, 48, 32), size=224):
    """A DenseNet (DenseNet-201 by default): each layer concatenates every earlier feature map."""
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(size, size))
    stem = [("features.conv0", dict(op="conv", kernel=7, stride=2, padding=3)),
            ("features.norm0", dict(op="identity")), ("features.relu0", dict(op="identity")),
            ("features.pool0", dict(op="maxpool", kernel=3, stride=2, padding=1))]
    prev = "x"
    for name, attrs in stem:
        G.add_node(name, module=name, **attrs)
        G.add_edge(prev, name)
        prev = name
    for bi, n in enumerate(blocks, start=1):
        blk = f"features.denseblock{bi}"
        feats = [prev]
        for li in range(1, n + 1):
            m = f"{blk}.denselayer{li}"
            cat = f"{m}.cat"
            G.add_node(cat, module=m, op="concat")
            for i, f in enumerate(feats):
                G.add_edge(f, cat, index=i)
            p = cat
            for name, attrs in (("norm1", dict(op="identity")), ("relu1", dict(op="identity")),
                                ("conv1", dict(op="conv", kernel=1)), ("norm2", dict(op="identity")),
                                ("relu2", dict(op="identity")),
                                ("conv2", dict(op="conv", kernel=3, padding=1))):
                G.add_node(f"{m}.{name}", module=f"{m}.{name}", **attrs)
                G.add_edge(p, f"{m}.{name}")
                p = f"{m}.{name}"
            feats.append(p)
        out = f"{blk}.cat"
        G.add_node(out, module=blk, op="concat")
        for i, f in enumerate(feats):
            G.add_edge(f, out, index=i)
        prev = out
        if bi < len(blocks):
            t = f"features.transition{bi}"
            for name, attrs in (("norm", dict(op="identity")), ("relu", dict(op="identity")),
                                ("conv", dict(op="conv", kernel=1)),
                                ("pool", dict(op="avgpool", kernel=2, stride=2))):
                G.add_node(f"{t}.{name}", module=f"{t}.{name}", **attrs)
                G.add_edge(prev, f"{t}.{name}")
                prev = f"{t}.{name}"
    G.add_node("features.norm5", module="features.norm5", op="identity")
    G.add_edge(prev, "features.norm5")
    G.add_node("pool", op="global")
    G.add_edge("features.norm5", "pool")
    G.add_node("classifier", module="classifier", op="identity")
    G.add_edge("pool", "classifier")
    return G
