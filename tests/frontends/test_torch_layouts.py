"""Layouts the tracer follows through views and whole-sequence ops (issue #11): F.fold after
F.unfold (volo's outlook attention), recurrent layers along one axis (sequencer2d's LSTMs).

Every case is checked against gradient support on the same module (rfgraph.tools.verify:
positive weights, float64): for every output feature, rfgraph's clipped bounds per axis equal
the hull of the input pixels whose gradient is non-zero (``check`` in test_torch_semantics).
"""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import rfgraph  # noqa: E402
from rfgraph.tools.verify import hull, positive_copy, support  # noqa: E402
from test_torch_ops import Fn, conv  # noqa: E402
from test_torch_semantics import check, ops  # noqa: E402


def channels_last(module):
    """``module`` on (N, H, W, C) inside a net taking and returning (N, C, H, W)."""
    return Fn(lambda x, m: m(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), module)


# -- F.unfold ... F.fold: the columns go back in place, a transposed conv over the block grid -----


@pytest.mark.parametrize("k, s, p, d, size", [(3, 1, 1, 1, (9, 8)), (3, 2, 1, 1, (10, 9)), (2, 2, 0, 1, (8, 8)),
                                              (3, 1, 0, 2, (11, 12))])
def test_fold_of_mixed_columns_is_a_conv_then_a_transposed_conv(k, s, p, d, size):
    # each block's k*k columns mixed by a positive matrix (as outlook attention's weights do):
    # output p reads every window that covers it
    mix = torch.rand(k * k, k * k) + 0.5

    def fn(x, c):
        cols = F.unfold(c(x), k, dilation=d, padding=p, stride=s)
        n, ckk, nb = cols.shape
        cols = (mix.to(cols) @ cols.view(n, ckk // (k * k), k * k, nb)).reshape(n, ckk, nb)
        return F.fold(cols, size, k, dilation=d, padding=p, stride=s)

    G, rec = check(Fn(fn, conv(1, 2, 3, padding=1)), (1,) + size)
    assert "convtranspose" in ops(G) and "global" not in ops(G)


def test_fold_of_unmixed_columns_says_it_is_an_upper_bound():
    # fold(unfold(x)) puts every pixel back in place; per position rfgraph knows only that the
    # block's vector read its window, so the union of the windows covering a pixel is a bound
    G = rfgraph.from_torch(Fn(lambda x: F.fold(F.unfold(x, 3, padding=1), (6, 6), 3, padding=1)), (1, 6, 6))
    [node] = [v for v in G if G.nodes[v].get("target") == "aten::col2im"]
    assert G.nodes[node]["op"] == "convtranspose" and "upper bound" in G.nodes[node]["note"]


def test_fold_of_columns_in_another_order_is_global_with_its_reason():
    def fn(x):
        cols = F.unfold(x, 3, padding=1)  # (N, 9, H*W): blocks row-major; transposed below
        n, kk, hw = cols.shape
        cols = cols.view(n, kk, 6, 6).transpose(2, 3).reshape(n, kk, hw)
        return F.fold(cols, (6, 6), 3, padding=1)

    G = rfgraph.from_torch(Fn(fn), (1, 6, 6))
    [node] = [v for v in G if G.nodes[v].get("target") == "aten::col2im"]
    assert G.nodes[node]["op"] == "global" and "row-major" in G.nodes[node]["note"]


@pytest.mark.parametrize("stride", [1, 2])
def test_volo_outlook_attention_equals_gradient_support(stride):
    volo = pytest.importorskip("timm.models.volo")
    attn = volo.OutlookAttention(8, 2, kernel_size=3, padding=1, stride=stride)
    G, rec = check(nn.Sequential(conv(1, 8, 3, padding=1), channels_last(attn)), (1, 12, 11))
    assert "global" not in ops(G)
    assert not any(rec.is_global)


# -- recurrent layers along one axis --------------------------------------------------------------


class AlongAxis(nn.Module):
    """A recurrent layer along H (``axis=0``, W in the batch) or W, as sequencer2d runs them."""

    def __init__(self, rnn, axis):
        super().__init__()
        self.rnn, self.axis = rnn, axis

    def forward(self, x):
        n, c, h, w = x.shape
        if self.axis == 0:
            seq = x.permute(0, 3, 2, 1).reshape(n * w, h, c)
            y = self.rnn(seq)[0]
            return y.reshape(n, w, h, -1).permute(0, 3, 2, 1)
        seq = x.permute(0, 2, 3, 1).reshape(n * h, w, c)
        return self.rnn(seq)[0].reshape(n, h, w, -1).permute(0, 3, 1, 2)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_bidirectional_recurrence_is_global_along_its_axis_only(kind, axis):
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
    net = nn.Sequential(conv(1, 3, 3, padding=1), AlongAxis(cls(3, 2, batch_first=True, bidirectional=True), axis),
                        conv(4, 1, 3))
    G, rec = check(net, (1, 9, 8))
    assert rec.is_global[axis] and not rec.is_global[1 - axis]
    [node] = [v for v in G if G.nodes[v].get("module") == "1.rnn" and G.nodes[v]["op"] == "global"]
    assert "bidirectional" in G.nodes[node]["note"]


@pytest.mark.parametrize("axis", [0, 1])
def test_unidirectional_recurrence_reads_the_steps_before(axis):
    # step t reads steps 0..t: rfgraph's bounds equal gradient support feature by feature
    net = nn.Sequential(conv(1, 3, 3, padding=1), AlongAxis(nn.LSTM(3, 2, num_layers=2, batch_first=True), axis))
    G, rec = check(net, (1, 7, 6))
    assert not any(rec.is_global)
    assert G.nodes["1.rnn"]["op"] == "conv" and "steps 0..t" in G.nodes["1.rnn"]["note"]


def test_recurrence_over_flattened_tokens_and_its_final_state():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.rnn = conv(1, 3, 3, padding=1), nn.GRU(3, 4)  # time first, no batch_first

        def forward(self, x):
            seq = self.c(x).flatten(2).permute(2, 0, 1)  # (H*W, N, C): raster order
            out, h = self.rnn(seq)
            return out, h

    G = rfgraph.from_torch(Tokens(), (1, 5, 6))
    a = rfgraph.analyze(G)
    out, state = G.graph["outputs"]
    assert all(a[out].is_global) and all(a[state].is_global)
    assert "flattened positions" in G.nodes["rnn"]["note"]


def test_sequencer2d_lstm2d_equals_gradient_support():
    seq = pytest.importorskip("timm.models.sequencer")
    layer = seq.LSTM2d(4, 3, bidirectional=True, union="cat", with_fc=True)
    G, rec = check(nn.Sequential(conv(1, 4, 3, padding=1), channels_last(layer)), (1, 8, 7), every=False)
    assert all(rec.is_global)
    # each LSTM is global along its own axis only: the column one keeps W's positions
    a = rfgraph.analyze(G)
    v, h = a.module("1.mods.0.rnn_v"), a.module("1.mods.0.rnn_h")
    assert (v.is_global, h.is_global) == ((True, False), (False, True))


def test_recurrent_output_shapes_match_the_real_kernel():
    from rfgraph.frontends.torch import _rnn_outputs

    cases = [(nn.LSTM(5, 3, num_layers=2, bidirectional=True, batch_first=True, proj_size=2), (4, 6, 5)),
             (nn.LSTM(5, 3), (6, 5)), (nn.GRU(5, 3, bidirectional=True), (6, 4, 5)),
             (nn.RNN(5, 3, nonlinearity="relu", batch_first=True), (4, 6, 5))]
    for m, shape in cases:
        m = m.to("meta")
        calls = []

        class Spy(torch.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if len(args) == 9 and isinstance(args[3], bool):
                    calls.append((func, args))
                return func(*args, **(kwargs or {}))

        with Spy():
            m(torch.empty(shape, device="meta"))
        [(func, args)] = calls
        real = func(*args)  # the real meta kernel (an unbatched input arrives unsqueezed)
        fast = _rnn_outputs(torch, isinstance(m, nn.LSTM), args)
        assert [(tuple(t.shape), t.dtype) for t in fast] == [(tuple(t.shape), t.dtype) for t in real]


def test_a_cell_stepped_along_an_axis_in_python_is_global_along_it():
    # LSTMCell over the rows, stacked back: no crash, global along H, W's positions kept
    class Rows(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.cell, self.out = conv(1, 3, 3, padding=1), nn.LSTMCell(3, 3), conv(3, 1, 3, padding=1)

        def forward(self, x):
            y = self.c(x)
            state, rows = None, []
            for i in range(y.shape[2]):
                seq = y[:, :, i].permute(0, 2, 1).reshape(-1, 3)  # (N*W, C)
                state = self.cell(seq, state)
                rows.append(state[0].view(y.shape[0], y.shape[3], 3).permute(0, 2, 1))
            return self.out(torch.stack(rows, 2)) + y.sum(1, keepdim=True)

    net = Rows()
    G = rfgraph.from_torch(net, (1, 6, 7))
    rec = rfgraph.analyze(G)[G.graph["outputs"][0]]
    assert rec.is_global == (True, False) and rec.n == (6, 7)
    # an upper bound along H (row i reads rows 0..i+2), exact along W
    m = positive_copy(net)
    positions = [(i, j) for i in (0, 3, 5) for j in (0, 3, 6)]
    for (i, j), mask in zip(positions, support(m, None, (1, 6, 7), positions)):
        (lo0, hi0, _), (lo1, hi1, _) = hull(mask)
        assert rec.bounds(0)[0][i] <= lo0 and hi0 <= rec.bounds(0)[1][i]
        assert (rec.bounds(1)[0][j], rec.bounds(1)[1][j]) == (lo1, hi1)


# -- positions scrambled by a view --------------------------------------------------------------


class AttentionThenSkip(nn.Module):
    """smp MAnet's shape: position attention whose ``(N, H*W, C)`` result is reshaped straight to
    ``(N, C, H, W)`` (a scramble), then upsampled and joined with a map twice the size."""

    def __init__(self, attention=True):
        super().__init__()
        self.attention = attention
        self.down = conv(1, 4, 3, stride=2, padding=1)
        self.q, self.k, self.v = conv(4, 2, 1), conv(4, 2, 1), conv(4, 4, 1)
        self.skip, self.out = conv(1, 4, 3, padding=1), conv(8, 1, 3, padding=1)

    def forward(self, x):
        y = self.down(x)
        n, c, h, w = y.shape
        v = self.v(y).flatten(2).transpose(1, 2)  # (N, HW, C)
        if self.attention:
            scores = torch.softmax(self.q(y).flatten(2).transpose(1, 2) @ self.k(y).flatten(2), -1)
            v = scores @ v
        z = y + v.reshape(n, c, h, w)
        up = F.interpolate(z, scale_factor=2.0)
        return self.out(torch.cat([up, self.skip(x)], 1))


def test_a_view_scrambling_a_global_map_keeps_it_a_map():
    G, rec = check(AttentionThenSkip(), (1, 8, 10))
    assert all(rec.is_global)
    # after the attention every op is itself again (an upsample, a concat, a conv), not "global"
    assert G.nodes["out"]["op"] == "conv" and "upsample" in ops(G) and "concat" in ops(G)


def test_a_view_scrambling_a_local_map_is_global_at_the_right_size():
    # without attention the reshape scrambles positions that differ: the add joining them is
    # global (an upper bound) and says why; after it the map is a map again (its own size), so
    # the upsample and the join with the skip hold
    net = AttentionThenSkip(attention=False)
    G = rfgraph.from_torch(net, (1, 8, 10))
    rec = rfgraph.analyze(G)[G.graph["outputs"][0]]
    assert rec.n == (8, 10) and all(rec.is_global)
    assert G.nodes["add"]["op"] == "global" and "do not line up" in G.nodes["add"]["note"]
    assert G.nodes["out"]["op"] == "conv"


def test_a_window_op_over_scrambled_dims_is_global_at_its_output_size():
    # a conv straight over a scrambled reshape: global, with the conv's own (strided) size
    net = Fn(lambda x, a, b: b(a(x).flatten(2).transpose(1, 2).reshape(1, 2, 8, 10)), conv(1, 2, 3, padding=1),
             conv(2, 1, 3, stride=2, padding=1))
    G = rfgraph.from_torch(net, (1, 8, 10))
    rec = rfgraph.analyze(G)[G.graph["outputs"][0]]
    assert rec.n == (4, 5) and all(rec.is_global)
    assert "scrambled" in G.nodes[G.graph["outputs"][0]]["note"]


# -- attention within windows: a token reads exactly its window ----------------------------------


class WindowAttention(nn.Module):
    """Swin's shape on (N, C, H, W): optional cyclic shift, partition into w x w windows, fused
    attention over each window's tokens, reverse, shift back."""

    def __init__(self, dim=4, window=4, shift=0, fused=True):
        super().__init__()
        self.w, self.shift, self.fused = window, shift, fused
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        n, c, h, w = x.shape
        y = x.permute(0, 2, 3, 1)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        s = self.w
        win = y.view(n, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, s * s, c)
        q, k, v = self.qkv(win).reshape(win.shape[0], s * s, 3, 1, c).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused:
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            o = torch.softmax(q @ k.transpose(-2, -1), -1) @ v
        o = self.proj(o.transpose(1, 2).reshape(-1, s * s, c))
        y = o.view(n, h // s, w // s, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, c)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        return y.permute(0, 3, 1, 2)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("shift", [0, 2])
def test_window_attention_reads_exactly_its_window(shift, fused):
    G, rec = check(nn.Sequential(conv(1, 4, 3, padding=1), WindowAttention(shift=shift, fused=fused)), (1, 12, 8))
    assert "global" not in ops(G) and not any(rec.is_global)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("shape", [(1, 12, 4), (1, 4, 12)])
def test_a_window_as_wide_as_an_axis_spans_it_and_only_it(shape, shift, fused):
    # windows of 4 on a map 4 wide along one axis: the view splits that axis into 1 x 4, so the
    # window holds the whole axis; a token reads all of it, and only its window along the other
    # (once treated as attention over every position: rows 0..11 for a token reading 0..4)
    G, rec = check(nn.Sequential(conv(1, 4, 3, padding=1), WindowAttention(shift=shift, fused=fused)), shape)
    assert "global" not in ops(G)
    assert rec.is_global == tuple(n == 4 for n in shape[1:])


def test_timm_swin_blocks_equal_gradient_support():
    swin = pytest.importorskip("timm.models.swin_transformer")
    model = swin.SwinTransformer(img_size=32, patch_size=2, window_size=4, embed_dim=4, depths=(2, 2),
                                 num_heads=(1, 1), mlp_ratio=1.0)
    net = Fn(lambda x, m: m.layers[1](m.layers[0](m.patch_embed(x))).permute(0, 3, 1, 2), model)
    G, rec = check(net, (3, 32, 32))
    # patch merging is a 2x2 space-to-depth, not "layer norm over spatial positions"
    assert not [v for v in G if G.nodes[v]["op"] == "global"]


@pytest.mark.parametrize("nchw", [False, True])
@pytest.mark.parametrize("partition", ["block", "grid"])
def test_maxvit_block_and_grid_attention_equal_gradient_support(partition, nchw):
    maxxvit = pytest.importorskip("timm.models.maxxvit")
    cfg = maxxvit.MaxxVitTransformerCfg(dim_head=4, window_size=(4, 4), grid_size=(4, 4), expand_ratio=1.0)
    if nchw:
        layer = maxxvit.PartitionAttention2d(8, partition_type=partition, cfg=cfg)
    else:
        layer = channels_last(maxxvit.PartitionAttentionCl(8, partition_type=partition, cfg=cfg))
    G, rec = check(nn.Sequential(conv(1, 8, 3, padding=1), layer), (1, 16, 12))
    assert not any(rec.is_global)
    # grid attention: a token reads the tokens 3 apart (12 / 4) that share its place in a window
    assert ("conv" if partition == "grid" else "upsample") in ops(G)


def test_patches_cut_by_views_then_a_linear_layer_are_a_patch_embedding():
    # naflexvit / gemma4's patchify: (N, C, H, W) -> (N, H/p * W/p, p*p*C) by views, then Linear:
    # the token at (i, j) reads exactly its p x p patch
    class Patchify(nn.Module):
        def __init__(self, p=4):
            super().__init__()
            self.p, self.proj = p, nn.Linear(p * p * 2, 3)

        def forward(self, x):
            n, c, h, w = x.shape
            p = self.p
            t = x.view(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(n, (h // p) * (w // p), -1)
            return self.proj(t).transpose(1, 2).reshape(n, 3, h // p, w // p)

    G, rec = check(nn.Sequential(conv(1, 2, 3, padding=1), Patchify()), (1, 12, 16))
    assert (rec.n, rec.jump) == ((3, 4), (4, 4)) and "global" not in ops(G)


def test_a_join_after_a_chain_from_a_global_size_knows_its_size():
    # a globally pooled branch, normalised through ops whose tags say nothing, concatenated with a
    # map: global with its reason (the front-end knows the branch has one position), not a crash
    def fn(x, c):
        y = c(x)
        pooled = y.flatten(2).transpose(1, 2).softmax(1).transpose(1, 2) @ y.flatten(2).transpose(1, 2)
        g = (pooled - pooled.mean(-1, keepdim=True)).rsqrt().transpose(1, 2)  # (N, C, C): no positions
        return torch.cat([g.mean(-1, keepdim=True).expand(-1, -1, y.shape[2] * y.shape[3]), y.flatten(2)], 1)

    G = rfgraph.from_torch(Fn(fn, conv(1, 2, 3, padding=1)), (1, 6, 6))
    rec = rfgraph.analyze(G)[G.graph["outputs"][0]]
    assert all(rec.is_global)


@pytest.mark.parametrize("rel_pos", [False, True])
def test_samvit_padded_windows_equal_gradient_support(rel_pos):
    # SAM's ViT pads the 10 x 10 token map to 12 x 12 for windows of 4, attends within each
    # window (the decomposed relative-position bias comes from the queries), crops back
    sam = pytest.importorskip("timm.models.vision_transformer_sam")
    model = sam.VisionTransformerSAM(img_size=40, patch_size=4, embed_dim=8, depth=2, num_heads=1, window_size=4,
                                     use_rel_pos=rel_pos, global_attn_indexes=(), neck_chans=4, mlp_ratio=1.0)
    net = Fn(lambda x, m: m.blocks(m.patch_embed(x) + m.pos_embed).permute(0, 3, 1, 2), model)
    G, rec = check(net, (3, 40, 40))
    assert not any(rec.is_global) and not [v for v in G if G.nodes[v]["op"] == "global"]


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("hw, is_global", [((20, 20), (False, False)), ((20, 8), (False, True))])
def test_torchvision_swin_stage_equals_gradient_support(hw, is_global, v2):
    # torchvision pads the 10 x 10 map to 12 x 12 for windows of 4, shifts by 2, attends, crops;
    # on a 10 x 4 map the rows are padded to 12 (three windows), the 4 columns are one window and
    # the shift is along the rows only (swin_v2_t's last stages at 200 x 120)
    tv = pytest.importorskip("torchvision.models.swin_transformer")
    block = tv.SwinTransformerBlockV2 if v2 else tv.SwinTransformerBlock
    model = tv.SwinTransformer(patch_size=[2, 2], embed_dim=4, depths=[2], num_heads=[1], window_size=[4, 4],
                               mlp_ratio=1.0, block=block)
    net = Fn(lambda x, m: m.features(x).permute(0, 3, 1, 2), model)
    G, rec = check(net, (3, *hw))
    assert not [v for v in G if G.nodes[v]["op"] == "global"]
    assert rec.is_global == is_global


@pytest.mark.parametrize("v2", [False, True])
def test_torchvision_swin_merging_and_weights_at_values_are_one_node_each(v2):
    # two stages: the patch merging (x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], ... side by
    # side) is one 2x2 space-to-depth, not 8 slices and a "misaligned" concat; softmax(q @ kT) @ v
    # with v the projection q and k come from (V2: q and k divided by their norms) reads what its
    # weights read, one identity, not a second mix over the same windows
    tv = pytest.importorskip("torchvision.models.swin_transformer")
    model = tv.SwinTransformer(patch_size=[2, 2], embed_dim=4, depths=[2, 2], num_heads=[1, 1], window_size=[4, 4],
                               mlp_ratio=1.0, block=tv.SwinTransformerBlockV2 if v2 else tv.SwinTransformerBlock,
                               downsample_layer=tv.PatchMergingV2 if v2 else tv.PatchMerging)
    net = Fn(lambda x, m: m.features(x).permute(0, 3, 1, 2), model)
    G, rec = check(net, (3, 32, 32))
    assert "slice" not in ops(G) and "concat" not in ops(G)
    merge = G.nodes["mods.0.features.2.cat"]
    assert (merge["op"], merge["kernel"]) == ("avgpool", (2, 2)) and "space-to-depth" in merge["note"]
    products = [v for v in G if v.endswith("attn.bmm_1")]
    assert len(products) == 4 and all(G.nodes[v]["op"] == "identity" for v in products)
    assert ops(G).count("upsample") == 4  # one mix over the windows per attention
    assert not [v for v in G if G.nodes[v]["op"] == "global"]


class TwoSourceWindowAttention(WindowAttention):
    """Window attention whose values come from another map than the queries and keys: the
    product with the values mixes them over the windows anew."""

    def __init__(self):
        super().__init__(fused=False)
        self.vconv = nn.Conv2d(4, 4, 5, padding=2)

    def forward(self, x):
        n, c, h, w = x.shape
        s = self.w

        def windows(t):
            return t.permute(0, 2, 3, 1).reshape(n, h // s, s, w // s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(
                -1, s * s, c)

        qk, v = windows(x), windows(self.vconv(x))
        o = torch.softmax(qk @ qk.transpose(-2, -1), -1) @ v
        return o.view(n, h // s, w // s, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, c).permute(0, 3, 1, 2)


@pytest.mark.parametrize("shape", [(1, 12, 8), (1, 8, 12)])
def test_weights_at_values_from_another_map_mix_the_values_over_the_windows(shape):
    G, rec = check(nn.Sequential(conv(1, 4, 3, padding=1), TwoSourceWindowAttention()), shape)
    assert ops(G).count("upsample") == 2 and "global" not in ops(G)
    assert not any(rec.is_global)


def phases(picks, net=None):
    """A net concatenating in channels the strided slices ``picks`` (per slice, (start, step)
    along the rows and along the columns) of one conv's output."""
    def fn(x, c):
        y = c(x)
        return torch.cat([y[:, :, r0::rs, c0::cs] for (r0, rs), (c0, cs) in picks], 1)
    return Fn(fn, conv(1, 2, 3, padding=1))


@pytest.mark.parametrize("picks, kernel", [
    ([((0, 2), (0, 2)), ((1, 2), (0, 2)), ((0, 2), (1, 2)), ((1, 2), (1, 2))], (2, 2)),  # Swin's order
    ([((1, 2), (1, 2)), ((0, 2), (0, 2)), ((1, 2), (0, 2)), ((0, 2), (1, 2)), ((0, 2), (0, 2))], (2, 2)),
    ([((0, 2), (0, 1)), ((1, 2), (0, 1))], (2, 1)),  # along the rows only
    ([((r, 3), (0, 1)) for r in range(3)], (3, 1)),
    ([((0, 2), (0, 2)), ((1, 2), (0, 2)), ((0, 2), (1, 2))], None),  # a phase missing: a concat
    ([((0, 2), (0, 2)), ((1, 2), (1, 2))], None),
    ([((0, 4), (0, 1)), ((2, 4), (0, 1))], None),  # every other phase of 4: rows 1 and 3 of each block unread
])
def test_a_concat_of_every_phase_of_one_map_is_a_space_to_depth(picks, kernel):
    G, rec = check(phases(picks), (1, 12, 12))
    cat = G.graph["outputs"][0]
    if kernel is None:
        assert G.nodes[cat]["op"] == "concat" and "slice" in ops(G)
    else:
        assert (G.nodes[cat]["op"], G.nodes[cat]["kernel"]) == ("avgpool", kernel)
        assert "slice" not in ops(G) and rec.jump == kernel


def test_phases_of_two_maps_stay_a_concat_and_of_an_odd_size_leave_the_last_row():
    def two(x, a, b):
        y, z = a(x), b(x)
        return torch.cat([y[:, :, 0::2], z[:, :, 1::2]], 1)

    G, _ = check(Fn(two, conv(1, 2, 3, padding=1), conv(1, 2, 5, padding=2)), (1, 12, 6))
    assert G.nodes[G.graph["outputs"][0]]["op"] == "concat"
    # 13 rows cut to 12 so the phases have 6 rows each: the 2x1 blocks of rows 0..11, row 12
    # read by no feature, as a pooling of kernel 2 over 13 rows has it
    def odd(x, c):
        y = c(x)
        return torch.cat([y[:, :, 0:12:2], y[:, :, 1::2]], 1)

    G, rec = check(Fn(odd, conv(1, 2, 3, padding=1)), (1, 13, 6))
    assert G.nodes[G.graph["outputs"][0]]["op"] == "avgpool" and rec.n == (6, 6)
    assert int(rec.bounds(0)[1].max()) == 12  # the conv's 3 rows around row 11 reach row 12


def test_torchvision_swin3d_with_windows_across_two_axes_equals_gradient_support():
    # video Swin at 4 frames of 20 x 8: tokens 2 x 10 x 4, windows of 4 cut to the 2 frames and
    # span them, rows padded to 12 (three windows), the 4 columns one window (was: attention
    # over every position, global on all three axes)
    tv = pytest.importorskip("torchvision.models.video.swin_transformer")
    model = tv.SwinTransformer3d(patch_size=[2, 2, 2], embed_dim=4, depths=[2], num_heads=[1],
                                 window_size=[4, 4, 4], mlp_ratio=1.0)
    net = Fn(lambda x, m: m.features(m.patch_embed(x)).permute(0, 4, 1, 2, 3), model)
    G, rec = check(net, (3, 4, 20, 8), every=False)
    assert rec.is_global == (True, False, True)


# -- halo attention: queries in blocks, keys and values the overlapping window of each block -----


@pytest.mark.parametrize("stride, block, halo", [(1, 4, 1), (2, 4, 1), (1, 4, 2)])
def test_halo_attention_reads_its_block_window_exactly(stride, block, halo):
    # HaloAttn: q in b x b blocks; k, v unfolded windows of b + 2*halo every b (padding halo);
    # position (i, j) reads itself and its block's window: on 16 x 16 after a 3x3 conv, a block
    # of 4 with halo 1 reads rows 4*(i//4) - 1 - 1 .. 4*(i//4) + 4 + 1 (rf 6 + 2 = 8, clipped)
    halo_attn = pytest.importorskip("timm.layers.halo_attn")
    layer = halo_attn.HaloAttn(8, 8, num_heads=2, dim_head=4, block_size=block, halo_size=halo, stride=stride)
    G, rec = check(nn.Sequential(conv(1, 8, 3, padding=1), layer), (1, 16, 16))
    assert "global" not in ops(G) and not any(rec.is_global)
    assert rec.rf == (block + 2 * halo + 2,) * 2 and rec.n == (16 // stride,) * 2


def test_relative_logits_skew_keeps_each_query_position():
    # rel_logits_1d's pad / flatten / pad / view / slice: every logit of a query comes from it
    from rfgraph.frontends import torch_layout as TL

    halo_attn = pytest.importorskip("timm.layers.halo_attn")
    pos = halo_attn.PosEmbedRel(block_size=4, win_size=6, dim_head=4, scale=1.0)
    net = Fn(lambda x, m: m(x.permute(0, 2, 3, 1).reshape(1, 1, 16, 4)).sum(-1).reshape(1, 1, 4, 4), pos)
    G, rec = check(nn.Sequential(conv(1, 4, 3, padding=1), net), (1, 4, 4))
    assert rec.rf == (3, 3) and not any(rec.is_global)
    assert TL.padded_rows(TL.Merged(((0, 4), (None, 3))), 1, 1) is None


def test_an_axis_split_one_way_then_read_another_way_stays_that_axis():
    # rows cut 3 x 4, that view read as 4 x 3 (the dynamo exporter writes MaxViT's grid partition
    # so), then back to 12 rows: the same positions in order, so the conv after it is exact (the
    # second view used to scramble rows and columns into one global set)
    def fn(x, c, d):
        y = c(x)
        n, ch, h, w = y.shape
        z = y.view(n, ch, 3, 4, w).view(n, ch, 4, 3, w).reshape(n, ch, h, w)
        return d(z)

    G, rec = check(Fn(fn, conv(1, 2, 3, padding=1), conv(2, 1, 3, padding=1)), (1, 12, 9))
    assert "global" not in ops(G) and not any(rec.is_global)


class ReducedAttention(nn.Module):
    """Attention whose keys and values come from a strided conv over the tokens (PVT's and
    SegFormer's spatial reduction; MViT pools them): the conv drops the border tokens it does
    not reach, so a query position reads its own token, and every key -- not every query."""

    def __init__(self, sr=3, fused=False, q_stride=1, dim=4):
        super().__init__()
        self.fused, self.dim = fused, dim
        self.q = nn.Conv2d(dim, dim, q_stride, q_stride) if q_stride > 1 else nn.Linear(dim, dim)
        self.sr = nn.Conv2d(dim, dim, sr, sr)
        self.kv = nn.Linear(dim, 2 * dim)

    def forward(self, x):
        B, C, H, W = x.shape
        if isinstance(self.q, nn.Conv2d):
            q = self.q(x).flatten(2).transpose(1, 2)
        else:
            q = self.q(x.flatten(2).transpose(1, 2))
        k, v = self.kv(self.sr(x).flatten(2).transpose(1, 2)).chunk(2, dim=-1)
        q, k, v = (t.unsqueeze(1) for t in (q, k, v))  # one head
        if self.fused:
            y = nn.functional.scaled_dot_product_attention(q, k, v)
        else:
            y = ((q @ k.transpose(-2, -1)) * self.dim ** -0.5).softmax(-1) @ v
        h = H if isinstance(self.q, nn.Linear) else H // self.q.stride[0]
        return y.squeeze(1).transpose(1, 2).reshape(B, C, h, -1)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("size", [(10, 8), (9, 12)])
def test_attention_onto_reduced_keys_reads_its_query_and_every_key(fused, size):
    # keys from a 3x3 stride-3 conv on 10 x 8 tokens read rows 0..8, cols 0..5 only: a query
    # token reads those and its own position (once: every query's too, the whole input)
    G, rec = check(nn.Sequential(conv(1, 4, 1), ReducedAttention(fused=fused)), (1, *size))
    covered = tuple(n // 3 * 3 < n for n in size)  # a border the keys do not reach
    assert not any(rec.is_global[ax] for ax in range(2) if covered[ax])
    assert "global" in ops(G)


@pytest.mark.parametrize("fused", [False, True])
def test_pooled_queries_onto_reduced_keys(fused):
    # queries on a 2x coarser grid (MViT's pooled queries), keys 3x coarser
    check(nn.Sequential(conv(1, 4, 3, padding=1), ReducedAttention(fused=fused, q_stride=2)), (1, 10, 8))


# -- MobileViT's unfold: channels merged with the coarse piece of an axis ------------------------


def _mobilevit_block(attention):
    mobilevit = pytest.importorskip("timm.models.mobilevit")
    torch.manual_seed(0)
    block = mobilevit.MobileVitBlock(4, 4, transformer_dim=8, transformer_depth=1, patch_size=2, num_heads=1)
    if not attention:
        block.transformer = nn.Sequential()  # unfold, layer norm over each token's channels, fold
    return block.eval()


@pytest.mark.parametrize("size", [(12, 10), (13, 11)])  # 13 x 11: resized to 14 x 12 and back
def test_mobilevit_unfold_keeps_each_position(size):
    # (N, C, H, W) -> (N*C*H/2, 2, W/2, 2) merges the channels with H's coarse piece; once read
    # as scrambled, so the layer norm over each token's channels was "over spatial positions":
    # global along H. Each position reads its own 3 x 3 twice (conv_kxk, conv_fusion): 5 x 5
    G, rec = check(_mobilevit_block(attention=False), (4, *size))
    assert not any(rec.is_global) and "global" not in ops(G)
    if size == (12, 10):
        assert rec.rf == (5, 5)


@pytest.mark.parametrize("size", [(12, 10), (13, 11)])
def test_mobilevit_block_attention_reads_its_place_in_every_patch(size):
    # attention over the patches, one place in the 2 x 2 patch at a time: MaxViT's grid
    G, rec = check(_mobilevit_block(attention=True), (4, *size))
    assert "global" not in ops(G)


# -- a conv on each window of a partition (EfficientViT-M's depthwise conv on the queries) --------


def _in_windows(x, ws, fn):
    """``fn`` on each ws x ws window of (N, C, H, W), as EfficientViT-M partitions (channels last)."""
    b, c, h, w = x.shape
    x = x.permute(0, 2, 3, 1).view(b, h // ws, ws, w // ws, ws, c).transpose(2, 3)
    x = fn(x.reshape(-1, ws, ws, c).permute(0, 3, 1, 2))
    x = x.permute(0, 2, 3, 1).view(b, h // ws, w // ws, ws, ws, c).transpose(2, 3)
    return x.reshape(b, h, w, c).permute(0, 3, 1, 2)


@pytest.mark.parametrize("k, d, size", [(3, 1, (8, 12)), (5, 1, (12, 8)), (3, 2, (8, 8))])
def test_a_conv_on_each_window_is_padded_at_the_window_edges(k, d, size):
    # once "convolution over scrambled spatial dims: treated as global"; a feature at a window's
    # edge reads only its own window's pixels
    dw = conv(2, 2, k, padding=d * (k // 2), dilation=d, groups=2)
    G, rec = check(Fn(lambda x, a, c: _in_windows(a(x), 4, c), conv(1, 2, 1), dw), (1, *size))
    assert "window_conv" in ops(G) and "global" not in ops(G)
    assert not any(rec.is_global) and rec.exact == (False, False)


@pytest.mark.parametrize("size", [(8, 8), (10, 9)])  # 10 x 9: padded to 12 x 12 windows, then cropped
def test_efficientvit_m_local_window_attention_equals_gradient_support(size):
    msra = pytest.importorskip("timm.models.efficientvit_msra")
    torch.manual_seed(0)
    attn = msra.LocalWindowAttention(8, 4, num_heads=2, attn_ratio=1, resolution=size[0], window_resolution=4,
                                     kernels=(3, 3))
    G, rec = check(nn.Sequential(conv(1, 8, 3, padding=1), attn.eval()), (1, *size))
    assert "window_conv" in ops(G) and "global" not in ops(G)
    assert not any(rec.is_global)


class GlobalQueryWindows(nn.Module):
    """GCViT's shape on a channels-last map: window attention whose queries come from a global
    summary repeated for every window, added back to the map."""

    def __init__(self, dim=4, window=4):
        super().__init__()
        self.w, self.conv, self.kv = window, conv(1, dim, 3, padding=1), nn.Linear(dim, dim)

    def forward(self, x):
        x = self.conv(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        n, h, w, c = x.shape
        s = self.w
        win = x.view(n, h // s, s, w // s, s, c).transpose(2, 3).reshape(-1, s * s, c)
        q = x.mean((1, 2), keepdim=True).expand(n, s, s, c).reshape(n, s * s, c)
        q = q.repeat_interleave(win.shape[0] // n, dim=0)
        kv = self.kv(win)
        y = (q @ kv.transpose(1, 2)).softmax(-1) @ kv
        y = y.view(n, h // s, w // s, s, s, c).transpose(2, 3).reshape(n, h, w, c)
        return (x + y).permute(0, 3, 1, 2)


def test_a_join_with_a_global_branch_keeps_the_channels_last_map_size():
    # the add was global (its branches' dims do not line up) and of one feature, not the map's
    # 8 x 12 positions: every later module of GCViT's stages had n (1, 1)
    G, rec = check(GlobalQueryWindows(), (1, 8, 12))
    assert all(rec.is_global) and rec.n == (8, 12)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("size", [(16, 16), (12, 20)])  # 12 x 20: padded to whole windows of 8
def test_sam2_hiera_queries_pooled_in_windows_equal_gradient_support(fused, size):
    # at a stage change Hiera max-pools each window's queries (8 x 8 -> 4 x 4) and attends onto
    # the window's 8 x 8 keys: once "attention scores pair every query with every key: global"
    hiera = pytest.importorskip("timm.models.hieradet_sam2")
    torch.manual_seed(0)
    block = hiera.MultiScaleBlock(4, 8, 1, mlp_ratio=1.0, q_stride=(2, 2), window_size=8).eval()
    block.attn.fused_attn = fused
    G, rec = check(Fn(lambda x, c, b: b(c(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2), conv(1, 4, 3, padding=1),
                      block), (1, *size))
    assert "global" not in ops(G) and not any(rec.is_global)
    assert rec.n == (size[0] // 2, size[1] // 2)


def test_a_pooling_on_each_window_that_stays_inside_it_is_the_pooling_of_the_map():
    # max pooling 2 x 2 on each 4 x 4 window: the windows shrink to 2 x 2 and the view back
    # rejoins them; the node is the map's own pooling, exact (affine)
    def net(x, c):
        x = c(x).permute(0, 2, 3, 1)
        n, h, w, ch = x.shape
        win = x.view(n, h // 4, 4, w // 4, 4, ch).transpose(2, 3).reshape(-1, 4, 4, ch).permute(0, 3, 1, 2)
        win = F.max_pool2d(win, 2).permute(0, 2, 3, 1)  # (N*windows, 2, 2, C)
        y = win.reshape(n, h // 4, w // 4, 2, 2, ch).transpose(2, 3).reshape(n, h // 2, w // 2, ch)
        return y.permute(0, 3, 1, 2)

    G, rec = check(Fn(net, conv(1, 2, 3, padding=1)), (1, 8, 12))
    assert "maxpool" in ops(G) and "global" not in ops(G) and all(rec.exact)
    assert rec.n == (4, 6) and rec.rf == (4, 4) and rec.jump == (2, 2)
