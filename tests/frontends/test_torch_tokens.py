"""One token picked out of a token axis (a ViT's class token ``x[:, 0]``) or out of a flattened
map: the result holds no positions along the axes that dim carried, so its record has n 1 there,
and every module output's n agrees with the tensor torch computed."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import rfgraph  # noqa: E402
from rfgraph import schema  # noqa: E402
from rfgraph.tools.verify import hull, positive_copy, support  # noqa: E402
from test_torch_ops import Fn, conv  # noqa: E402


def output_shapes(model, shape):
    """The shape of every module's (first tensor) output in one real forward pass on meta."""
    shapes, names = {}, {id(m): q for q, m in model.named_modules()}

    def hook(module, args, out):
        if isinstance(out, torch.Tensor):
            shapes.setdefault(names[id(module)], tuple(out.shape))

    h = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        with torch.no_grad():
            model(torch.empty((1,) + tuple(shape), device="meta"))
    finally:
        h.remove()
    return shapes


def assert_n_matches_torch(model, shape):
    """Every module output that is a map ``(N, C, *spatial)`` has its spatial size as n; one with
    no spatial dims left ``(N, F)`` has n 1 per axis. Token sequences (``(N, L, C)``, attention's
    ``(N, heads, L, D)``) are skipped: their n is the grid's, which no dim shows."""
    shapes = output_shapes(model, shape)
    G = rfgraph.from_torch(model, shape)
    a = rfgraph.analyze(G)
    naxes = len(shape) - 1
    maps = schema.shapes(G)  # the nodes whose tensor is a map (N, C, *spatial), not (N, heads, L, D)
    checked = 0
    for qual, node in schema.module_outputs(G).items():
        s = shapes.get(qual)
        if s is None:
            continue
        if len(s) == naxes + 2 and node in maps:
            want = s[2:]
        elif len(s) == 2:
            want = (1,) * naxes
        else:
            continue
        assert a[node].n == want, (qual, node, a[node].n, s)
        checked += 1
    return G, a, checked


def vit_models():
    out = []
    tv = pytest.importorskip("torchvision.models")
    with torch.device("meta"):
        out.append(("vit_b_16", tv.vit_b_16().eval(), "heads.head"))
    try:
        import timm
    except ImportError:
        return out
    with torch.device("meta"):
        out.append(("vit_tiny", timm.create_model("vit_tiny_patch16_224", pretrained=False).eval(), "head"))
    return out


@pytest.mark.parametrize("which", ["vit_b_16", "vit_tiny"])
def test_every_vit_module_output_has_the_n_of_its_tensor(which):
    found = {name: (m, head) for name, m, head in vit_models()}
    if which not in found:
        pytest.skip("timm is not installed")
    model, head = found[which]
    G, a, checked = assert_n_matches_torch(model, (3, 224, 224))
    assert checked >= 3  # the patch conv, the head and the model; the blocks hold tokens
    # the logits (N, 1000): one feature seeing the whole image, from the first attention
    rec = a[schema.module_outputs(G)[head]]
    assert rec.n == (1, 1) and all(rec.is_global) and rec.rf == (224, 224)
    assert all(g is not None and ("attn" in g or "attention" in g) for g in rec.global_from)
    assert not rec.note


class ClassToken(nn.Module):
    """A ViT in miniature: patch conv, class token, attention over all tokens, then the class
    token (``select``, ``x[:, :1]`` or a tensor index) through a linear head."""

    def __init__(self, pick="select"):
        super().__init__()
        self.pick = pick
        self.patch = conv(1, 4, 2, stride=2)
        self.cls = nn.Parameter(torch.ones(1, 1, 4))
        self.attn = nn.MultiheadAttention(4, 1, batch_first=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1)
        t = t + self.attn(t, t, t, need_weights=False)[0]
        if self.pick == "select":
            t = t[:, 0]
        elif self.pick == "slice":
            t = t[:, :1].flatten(1)
        else:
            t = t[:, torch.zeros(1, dtype=torch.long, device=t.device)].flatten(1)
        return self.head(t)


@pytest.mark.parametrize("pick", ["select", "slice", "index"])
def test_the_class_token_after_attention_is_one_global_feature(pick):
    net = ClassToken(pick)
    G = rfgraph.from_torch(net, (1, 8, 6))
    rec = rfgraph.analyze(G)[G.graph["outputs"][0]]
    assert rec.n == (1, 1) and all(rec.is_global) and rec.rf == (8, 6) and not rec.note
    # equals gradient support: the one output feature sees the whole input
    m = positive_copy(net)
    [mask] = support(m, None, (1, 8, 6), [()])
    assert [(lo, hi) for lo, hi, _ in hull(mask)] == [(0, 7), (0, 5)]


@pytest.mark.parametrize("index", [0, 7, 19])
def test_one_position_of_a_flattened_map_is_that_position(index):
    # x.flatten(2)[..., i] is position divmod(i, W) of the map: exact, a slice, not global
    net = Fn(lambda x, c: c(x).flatten(2)[..., index], conv(1, 2, 3, padding=1))
    G = rfgraph.from_torch(net, (1, 4, 5))
    rec = rfgraph.analyze(G)[G.graph["outputs"][0]]
    assert rec.n == (1, 1) and not any(rec.is_global)
    m = positive_copy(net)
    [mask] = support(m, None, (1, 4, 5), [()])
    want = [(lo, hi) for lo, hi, _ in hull(mask)]
    got = [tuple(int(v[0]) for v in rec.bounds(ax)[:2]) for ax in range(2)]
    assert got == want


def test_one_token_of_a_local_token_sequence_is_global_and_says_why():
    # tokens after a class token was joined, no attention yet: which grid position the picked
    # token is, the tags do not tell; global along both axes (an upper bound), never the grid's n
    class Pick(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = conv(1, 4, 2, stride=2)
            self.cls = nn.Parameter(torch.ones(1, 1, 4))

        def forward(self, x):
            t = self.patch(x).flatten(2).transpose(1, 2)
            return torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1)[:, 3]

    G = rfgraph.from_torch(Pick(), (1, 8, 6))
    out = G.graph["outputs"][0]
    rec = rfgraph.analyze(G)[out]
    assert rec.n == (1, 1) and all(rec.is_global)
    assert "which position is not known" in G.nodes[out]["note"]


def test_grid_tokens_sliced_back_off_a_class_token_keep_their_positions():
    # coat / crossvit: cat a class token, per-token layers, x[:, 1:] back to a map, a 3x3 conv:
    # each output reads its own 3x3 (then 5x5) neighbourhood, not the whole map
    from test_torch_semantics import check, ops

    class ClsThenConv(nn.Module):
        def __init__(self, c=4):
            super().__init__()
            self.cls, self.fc, self.conv = nn.Parameter(torch.ones(1, 1, c)), nn.Linear(c, c), nn.Conv2d(c, c, 3, padding=1)

        def forward(self, x):
            n, c, h, w = x.shape
            t = torch.cat([self.cls.expand(n, -1, -1), x.flatten(2).transpose(1, 2)], 1)
            t = self.fc(t)[:, 1:]
            return self.conv(t.transpose(1, 2).reshape(n, c, h, w))

    G, rec = check(nn.Sequential(conv(1, 4, 3, padding=1), ClsThenConv()), (1, 7, 6))
    assert "global" not in ops(G) and rec.rf == (5, 5)
