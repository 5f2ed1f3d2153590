"""``identity`` (rfgraph/ops/pointwise.py): each position maps to itself."""

import rfgraph
from rfgraph import ParameterError
from hand_graphs import check_bad_node


def test_identity_keeps_the_record_and_the_bounds():
    # conv k3 s2 p1 on 8: n = (8+2-3)//2+1 = 4, j = 2, r = 3, start 0.5; relu changes nothing
    G = rfgraph.chain([("c", "conv", 3, 2, 1)], (8,))
    G.add_node("relu", op="identity")
    G.add_edge("c", "relu")
    a = rfgraph.analyze(G)
    rec, conv = a["relu"], a["c"]
    assert (rec.n, rec.jump, rec.rf, rec.start) == ((4,), (2,), (3,), (0.5,))
    assert (rec.n, rec.jump, rec.rf, rec.start, rec.gaps) == (conv.n, conv.jump, conv.rf, conv.start, conv.gaps)
    for clip in (True, False):
        assert [b.tolist() for b in rec.bounds(0, clip=clip)] == [b.tolist() for b in conv.bounds(0, clip=clip)]
    # feature i reads 2i-1 .. 2i+1
    assert rec.bounds(0, clip=False)[0].tolist() == [-1, 1, 3, 5]


def test_identity_takes_no_parameters():
    check_bad_node({"op": "identity", "kernel": 3}, ParameterError, "unknown parameter(s) kernel")
