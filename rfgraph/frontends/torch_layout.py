"""Which tensor dimensions are spatial, through views, permutes and reductions.

Every traced tensor carries *tags*, one per dimension:

- ``None``: not spatial (batch, channels, features);
- an ``int`` ``a``: spatial axis ``a`` of the network input, positions in order;
- a ``frozenset`` of axes: the dimension holds positions of those axes in a scrambled order
  (``flatten`` of H and W, window partitions). Ops that only re-index keep the RF of every
  element; an op that mixes along such a dimension makes those axes global.

Pure functions of shapes and tags; no torch import (:func:`standard_view` takes a tensor).
"""

from __future__ import annotations

__all__ = ["Merged", "Part", "Prefixed", "Rows", "Skew", "padded_rows", "skew_view", "skew_slice", "rejoined",
           "flat_tag", "window_mixing", "partition_windows", "with_window", "contraction_window", "scores_window", "window_steps", "whole_axes",
           "axis_sizes", "space_to_depth", "spatial_axes",
           "view_tags", "permute_tags", "broadcast_tags", "reduce_tags", "is_standard", "map_dims", "map_shape",
           "standard_view"]


def spatial_axes(tag) -> frozenset:
    """Axes a tag carries: ``None -> {}``, ``a -> {a}``, a set -> itself.

    >>> sorted(spatial_axes(frozenset({0, 1}))), sorted(spatial_axes(1)), sorted(spatial_axes(None))
    ([0, 1], [1], [])
    """
    if tag is None:
        return frozenset()
    if isinstance(tag, frozenset):
        return tag
    if isinstance(tag, Merged):
        return frozenset().union(*(spatial_axes(t) for t, _ in tag))
    return frozenset((tag,))


def map_dims(tags, shape, naxes):
    """The dims (batch first) holding the spatial axes, in axis order, of a tensor laid out as a
    map, ``(N, C, *spatial)`` or channels-last ``(N, *spatial, C)`` (Swin's and MambaOut's
    stages), else None.

    >>> map_dims((None, None, 0, 1), (1, 8, 5, 6), 2), map_dims((None, 0, 1, None), (1, 5, 6, 8), 2)
    ((2, 3), (1, 2))
    >>> map_dims((None, 0, None), (1, 30, 8), 2) is None  # tokens
    True
    """
    if is_standard(tags, shape, naxes):
        return tuple(range(len(shape) - naxes, len(shape)))
    if len(tags) == naxes + 2 and tags[0] is None and tags[-1] is None and \
            all(t == ax for ax, t in enumerate(tags[1:-1])):
        return tuple(range(1, 1 + naxes))
    return None


def map_shape(tags, shape, naxes):
    """The spatial sizes of a tensor laid out as a map (see :func:`map_dims`), else None.

    >>> map_shape((None, None, 0, 1), (1, 8, 5, 6), 2), map_shape((None, 0, 1, None), (1, 5, 6, 8), 2)
    ((5, 6), (5, 6))
    """
    dims = map_dims(tags, shape, naxes)
    return None if dims is None else tuple(shape[d] for d in dims)


def standard_view(tensor, dims):
    """``tensor`` with its spatial ``dims`` (see :func:`map_dims`) moved last, in order: an
    ``(N, C, *spatial)`` view of a channels-last map (the tensor itself when already so).

    >>> import torch
    >>> standard_view(torch.zeros(1, 5, 6, 8), (1, 2)).shape
    torch.Size([1, 8, 5, 6])
    """
    last = tuple(range(tensor.ndim - len(dims), tensor.ndim))
    return tensor if tuple(dims) == last else tensor.movedim(tuple(dims), last)


def is_standard(tags, shape, naxes) -> bool:
    """Dims ``-naxes..`` are the spatial axes in order and the others are not spatial.

    A size-1 dim tagged None is accepted for its axis: a reshape to ``(N, C, 1, 1)`` loses the
    tag but not the meaning.

    >>> is_standard((None, None, 0, 1), (1, 8, 5, 5), 2)
    True
    >>> is_standard((None, 0, 1, None), (1, 5, 5, 8), 2)
    False
    """
    if len(tags) < naxes + 1:
        return False
    lead, tail = tags[:-naxes], tags[-naxes:]
    if any(t is not None for t in lead):
        return False
    for ax, (t, size) in enumerate(zip(tail, shape[-naxes:])):
        if t != ax and not (t is None and size == 1):
            return False
    return True


def permute_tags(tags, dims):
    """Tags after ``permute(dims)``.

    >>> permute_tags((None, None, 0, 1), (0, 2, 3, 1))
    (None, 0, 1, None)
    """
    return tuple(tags[d] for d in dims)


def broadcast_tags(shapes_tags, out_ndim):
    """Tags of an elementwise result: align dims from the right; a spatial tag wins over None,
    a full-size input over a size-1 one."""
    out = [None] * out_ndim
    best = [0] * out_ndim
    for shape, tags in shapes_tags:
        off = out_ndim - len(tags)
        for i, t in enumerate(tags):
            if t is None:
                continue
            rank = 2 if shape[i] != 1 else 1
            if rank > best[off + i]:
                out[off + i] = t
                best[off + i] = rank
            elif rank == best[off + i] and out[off + i] != t:
                out[off + i] = spatial_axes(out[off + i]) | spatial_axes(t)
    return tuple(out)


def reduce_tags(tags, dims, keepdim):
    """Tags after reducing over ``dims``, and the spatial axes the reduction mixed.

    >>> reduce_tags((None, None, 0, 1), [2, 3], False)
    ((None, None), frozenset({0, 1}))
    >>> reduce_tags((None, None, 0, 1), [1], True)
    ((None, None, 0, 1), frozenset())
    """
    nd = len(tags)
    dims = sorted({d % nd for d in dims}) if dims else list(range(nd))
    mixed = frozenset().union(*(spatial_axes(tags[d]) for d in dims)) if dims else frozenset()
    if keepdim:
        return tuple(tags), mixed
    return tuple(t for i, t in enumerate(tags) if i not in dims), mixed


class _Tag(frozenset):
    """A scrambled tag (the frozenset of spatial axes every op that does not care reads) that
    also keeps the named fields it was made from (``_fields``, the constructor's arguments, in
    order), for the few ops that know its kind. ``_axes(*fields)`` gives the axes it holds: by
    default those of the tag it wraps (its first field)."""

    __slots__ = ()
    _fields: tuple = ()

    @staticmethod
    def _axes(tag, *rest):
        return spatial_axes(tag)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(repr(getattr(self, f)) for f in self._fields)})"

    def __new__(cls, *values):
        self = super().__new__(cls, cls._axes(*values))
        for name, value in zip(cls._fields, values):
            setattr(self, name, value)
        return self

    def __reduce__(self):
        return (type(self), tuple(getattr(self, f) for f in self._fields))


class Part(_Tag):
    """Tag of one piece of a spatial axis split in two by a view (``H -> (H/f, f)``): a scrambled
    tag (a frozenset, for every op that does not care) that remembers which piece it is, so that
    space-to-depth (the fine pieces moved into channels) and the view undoing the split stay exact.
    Position ``o`` of the axis is ``outer * factor + inner``: the coarse piece holds ``outer``,
    the fine piece ``inner``.

    >>> c, f = Part(0, 4, False), Part(0, 4, True)
    >>> c == frozenset({0}), c.factor, f.fine
    (True, 4, True)
    """

    __slots__ = _fields = ("axis", "factor", "fine")

    @staticmethod
    def _axes(axis, factor, fine):
        return (axis,)

    def __repr__(self):
        return f"Part({self.axis}, {self.factor}, {'fine' if self.fine else 'coarse'})"


def rejoined(parts):
    """The int axis when ``parts`` (``(tag, size)`` pairs merged into one dim) are the coarse
    and the fine piece of one axis, in that order; else None.

    >>> rejoined([(Part(1, 7, False), 8), (Part(1, 7, True), 7)])
    1
    """
    if len(parts) != 2:
        return None
    (a, _), (b, size) = parts
    if (isinstance(a, Part) and isinstance(b, Part) and a.axis == b.axis and a.factor == b.factor == size
            and not a.fine and b.fine):
        return a.axis
    return None


class Merged(tuple):
    """Tag of a dimension made by merging dimensions (``view(N*H*W, C)`` before a linear layer):
    the ``(tag, size)`` of each merged part, in order, so that a later view can split it back."""

    __slots__ = ()

    def __repr__(self):
        return f"Merged{tuple(self)!r}"


def flat_tag(sizes):
    """The tag of one dim holding the positions of axes ``0..len(sizes)-1`` flattened in row-major
    order (``im2col``'s blocks, ``x.flatten(2)``), as :func:`view_tags` would give it: size-1 axes
    hold no positions and drop out, one axis left is its int, several make a :class:`Merged`.

    >>> flat_tag((3, 4)), flat_tag((1, 4)), flat_tag((1, 1)) is None
    (Merged((0, 3), (1, 4)), 1, True)
    """
    parts = [(ax, n) for ax, n in enumerate(sizes) if n != 1]
    if not parts:
        return None
    return parts[0][0] if len(parts) == 1 else Merged(parts)


def _atoms(shape, tags):
    out = []
    for size, tag in zip(shape, tags):
        if size == 1:
            continue
        if isinstance(tag, Merged):
            prod = 1
            for _, part in tag:
                prod *= part
            # a merged dim whose size changed since (a cat added a class token) is just scrambled
            out.extend(tag) if prod == size else out.append((spatial_axes(tag), size))
        else:
            out.append((tag, size))
    return out


def _scrambled(atoms, out_shape):
    axes = frozenset().union(*(spatial_axes(t) for t, _ in atoms)) or None
    return tuple(axes if s != 1 else None for s in out_shape)


def view_tags(in_shape, in_tags, out_shape):
    """Tags after ``view``/``reshape``.

    The input is read as a sequence of *atoms* (each dim, or the parts of a merged dim); each
    output dim consumes atoms whose sizes multiply to its size. One atom keeps its tag; several
    whole atoms make a :class:`Merged` tag (so the view can be undone); an output dim that cuts an
    atom in two (``H`` into ``H/7 x 7`` for windows) gets a :class:`Part` (merging the two pieces
    back gives the axis again); any other cut gets the scrambled set of the axes involved.
    Size-1 dims carry no positions and get ``None``.

    >>> view_tags((1, 8, 4, 4), (None, None, 0, 1), (1, 8, 16))
    (None, None, Merged((0, 4), (1, 4)))
    >>> merged = view_tags((1, 4, 4, 8), (None, 0, 1, None), (16, 8))
    >>> view_tags((16, 8), merged, (1, 4, 4, 8))
    (None, 0, 1, None)
    >>> view_tags((1, 8, 4, 4), (None, None, 0, 1), (1, 8, 2, 2, 4))
    (None, None, Part(0, 2, coarse), Part(0, 2, fine), 1)
    >>> view_tags((2, 3), (0, 1), (3, 2))
    (frozenset({0, 1}), frozenset({0, 1}))

    Channels merged with an axis's coarse piece (MobileViT's unfold) stay a :class:`Merged`:

    >>> view_tags((1, 4, 6, 6), (None, None, 0, 1), (12, 2, 3, 2))
    (Merged((None, 4), (Part(0, 2, coarse), 3)), Part(0, 2, fine), Part(1, 2, coarse), Part(1, 2, fine))

    Where a view splits an axis again another way (``H`` cut ``8 x 7``, then read as ``7 x 8``:
    MaxViT's grid partition after its block partition, as the dynamo exporter writes it), the
    coarse and the fine piece side by side are the axis itself:

    >>> c0, f0 = Part(0, 7, False), Part(0, 7, True)
    >>> view_tags((1, 8, 7), (None, c0, f0), (1, 7, 8))
    (None, Part(0, 8, coarse), Part(0, 8, fine))
    """
    atoms = _atoms(in_shape, in_tags)
    result = _cut(atoms, out_shape)
    if any(_is_scrambled(t) for t in result):
        rejoined_atoms = _rejoin(atoms)
        if rejoined_atoms != atoms:
            again = _cut(rejoined_atoms, out_shape)
            if not any(_is_scrambled(t) for t in again):
                return again
    return result


def _is_scrambled(tag) -> bool:
    if isinstance(tag, Merged):
        return any(_is_scrambled(t) for t, _ in tag)
    return isinstance(tag, frozenset) and not isinstance(tag, Part)


def _rejoin(atoms):
    """``atoms`` with each coarse piece followed by its fine piece made the whole axis again."""
    out = []
    for tag, size in atoms:
        if out and rejoined([out[-1], (tag, size)]) is not None:
            _, n = out.pop()
            out.append((tag.axis, n * size))
        else:
            out.append((tag, size))
    return out


def _cut(atoms, out_shape):
    """:func:`view_tags` of a sequence of atoms.

    An atom of a whole axis cut in two gives its coarse piece to this dim and its fine piece to
    the next one, each a :class:`Part`; a dim made of several atoms or pieces is a
    :class:`Merged` of them (MobileViT unfolds ``(N, C, H, W)`` into ``(N*C*H/2, 2, W/2, 2)``:
    channels merged with the coarse piece of H). Any other cut (a piece cut again, an axis
    already scrambled) scrambles the dim."""
    result = [None] * len(out_shape)
    k = 0  # next atom
    rem = None  # (tag, remaining size, the axis when the rest is its fine piece) of a cut atom
    for d, size in enumerate(out_shape):
        if size == 1:
            continue
        parts, prod, broken = [], 1, False
        while prod < size:
            if rem is not None:
                tag, avail, split = rem
                rem = None
                cut_before = True
            elif k < len(atoms):
                tag, avail = atoms[k]
                split, cut_before = None, False
                k += 1
            else:
                break
            need = size // prod
            if size % prod or need < 2 and avail > need:
                return _scrambled(atoms, out_shape)  # boundaries do not line up
            if avail <= need:  # the whole atom, or the whole rest of a cut one
                if split is not None:
                    parts.append((Part(split, avail, True), avail))
                else:
                    parts.append((tag, avail))
                    broken = broken or cut_before
                prod *= avail
            else:  # this dim takes only part of the atom
                whole = type(tag) is int and not cut_before
                factor = avail // need
                parts.append((Part(tag, factor, False) if whole else tag, need))
                rem = (tag, factor, tag if whole else None)
                broken = broken or not whole
                prod *= need
        if broken:
            axes = frozenset().union(*(spatial_axes(t) for t, _ in parts))
            result[d] = axes or None
        elif len(parts) == 1:
            result[d] = parts[0][0]
        elif rejoined(parts) is not None:
            result[d] = rejoined(parts)
        elif any(t is not None for t, _ in parts):
            result[d] = Merged(parts)
    return tuple(result)


def axis_sizes(tags, shape, naxes):
    """Number of positions along each network axis a tensor holds, as far as its tags tell
    (None for an axis that is absent or scrambled with another).

    >>> axis_sizes((None, None, 0, 1), (1, 8, 5, 6), 2)
    (5, 6)
    >>> axis_sizes((None, Merged(((0, 4), (1, 3))), None), (1, 12, 8), 2)
    (4, 3)
    >>> axis_sizes((None, Part(0, 7, False), Part(0, 7, True), frozenset({1})), (1, 2, 7, 14), 2)
    (14, None)
    """
    sizes = [1] * naxes
    seen = [False] * naxes
    bad = set()
    pieces_of = [[] for _ in range(naxes)]
    for d, (tag, size) in enumerate(zip(tags, shape)):
        pieces = tag if isinstance(tag, Merged) else ((tag, size),)
        for t, n in pieces:
            if isinstance(t, int) or isinstance(t, Part):
                ax = t if isinstance(t, int) else t.axis
                if ax < naxes:
                    sizes[ax] *= n
                    seen[ax] = True
                    pieces_of[ax].append(t)
            elif t is not None:
                bad |= spatial_axes(t)
    for ax, ps in enumerate(pieces_of):
        # one axis in two places (attention scores: queries and keys) is not one grid, unless
        # the places are the coarse and fine pieces of a split
        if len(ps) > 1 and sorted(isinstance(t, Part) and t.fine for t in ps) != [False, True]:
            bad.add(ax)
    return tuple(None if (a in bad or not seen[a]) else sizes[a] for a in range(naxes))


def space_to_depth(tags, naxes):
    """The block factor per axis and the tags after it when ``tags`` are a space-to-depth
    layout: each axis's coarse piece alone in a dim (in any dim order: ``(N, C', H/f, W/f)`` as
    tresnet's stem, or channels last ``(N, H/f, W/f, f*f*C)`` as Swin's patch merging), and the
    fine pieces (whole) in the other dims, with nothing else spatial there; else None. After it
    the coarse dims hold their axes and the others none.

    >>> c0, c1, f0, f1 = Part(0, 4, False), Part(1, 4, False), Part(0, 4, True), Part(1, 4, True)
    >>> space_to_depth((None, Merged(((f0, 4), (f1, 4), (None, 3))), c0, c1), 2)
    ((4, 4), (None, None, 0, 1))
    >>> space_to_depth((None, c0, c1, Merged(((f1, 4), (f0, 4), (None, 3)))), 2)
    ((4, 4), (None, 0, 1, None))
    >>> space_to_depth((None, None, c0, c1), 2) is None
    True
    >>> space_to_depth((None, c0, f0, c1, f1, None), 2) is None  # a window partition's first view
    True
    >>> space_to_depth((Merged(((f0, 4), (f1, 4))), None, c0, c1), 2) is None  # MaxViT's grid windows
    True
    """
    coarse, fines, out = {}, {}, []
    tail = tags[-naxes:]
    nchw = all(isinstance(t, Part) and not t.fine and t.axis == a for a, t in enumerate(tail))
    in_channels = True  # every dim holding fine pieces holds channels too (or is the channel dim)
    for d, tag in enumerate(tags):
        if isinstance(tag, Part) and not tag.fine:
            if tag.axis in coarse:
                return None
            coarse[tag.axis] = tag.factor
            out.append(tag.axis)
            continue
        pieces = tag if isinstance(tag, Merged) else ((tag, None),)
        spatial = [t for t, _ in pieces if t is not None]
        for t in spatial:
            if not isinstance(t, Part) or not t.fine or t.axis in fines:
                return None
            fines[t.axis] = t.factor
        if spatial and not any(t is None for t, _ in pieces) and not (nchw and d == len(tags) - naxes - 1):
            in_channels = False
        out.append(None)
    # fine pieces in dims of their own (a window partition) or in the batch (MaxViT's grid
    # partition) are still positions: only pieces in the channels are space-to-depth
    if sorted(coarse) != list(range(naxes)) or fines != coarse or not in_channels:
        return None
    return tuple(coarse[a] for a in range(naxes)), tuple(out)


def window_mixing(tag, others):
    """How an op mixing the elements along a dim tagged ``tag`` mixes positions, when that dim
    holds pieces of axes split in two and the other pieces sit in ``others`` (the tags of the
    tensor's other dims): ``{axis: (kind, factor)}``, else None.

    ``"block"``: the dim holds the fine pieces (a window partition, Swin and MaxViT's block
    attention): a position mixes with the ``factor`` positions of its window. ``"grid"``: the dim
    holds the coarse pieces (MaxViT's grid attention): a position mixes with the positions
    ``factor`` apart that share its place in the window. ``"whole"``: beside such pieces, the dim
    holds a whole axis of ``factor`` positions (one window spans it: the view's other piece of
    the axis was 1 wide), with which every position mixes. Non-spatial parts (channels merged
    in) do not matter; a piece whose other half is not in ``others`` (or is there twice), or a
    whole axis found there too, gives None.

    >>> f0, f1, c0, c1 = Part(0, 7, True), Part(1, 7, True), Part(0, 7, False), Part(1, 7, False)
    >>> window_mixing(Merged(((f0, 7), (f1, 7))), [Merged(((c0, 8), (c1, 8))), None])
    {0: ('block', 7), 1: ('block', 7)}
    >>> window_mixing(c0, [f0])
    {0: ('grid', 7)}
    >>> window_mixing(Merged(((f0, 7), (1, 7))), [c0, None])  # 7 columns: one window wide
    {0: ('block', 7), 1: ('whole', 7)}
    >>> window_mixing(f0, [None]) is None
    True
    """
    pieces = list(tag) if isinstance(tag, Merged) else [(tag, None)]
    pieces = [(t, size) for t, size in pieces if t is not None]
    if not any(isinstance(t, Part) for t, _ in pieces):
        return None  # positions of whole axes only: every position (the caller's global)
    if not all(isinstance(t, Part) or _is_axis(t) and size is not None for t, size in pieces):
        return None
    elsewhere = []
    for t in others:
        elsewhere.extend(x for x, _ in t) if isinstance(t, Merged) else elsewhere.append(t)
    plan = {}
    for t, size in pieces:
        if not isinstance(t, Part):  # a whole axis
            if t in plan or any(t in spatial_axes(x) for x in elsewhere):
                return None
            plan[t] = ("whole", size)
            continue
        twins = [x for x in elsewhere if isinstance(x, Part) and x.axis == t.axis]
        if t.axis in plan or len(twins) != 1 or twins[0].fine == t.fine or twins[0].factor != t.factor:
            return None
        plan[t.axis] = ("block" if t.fine else "grid", t.factor)
    return plan


def partition_windows(tags, nd, shape):
    """``[(axis, window), ...]`` for the last ``nd`` dims (of a tensor of ``shape``) when they
    hold a window partition (EfficientViT-M's ``(N*windows, C, w, w)``): each dim the fine piece
    of its own axis, whose coarse piece sits in the other dims exactly once, or a whole axis
    found nowhere else (one window spans it), at least one piece, and nothing else in the other
    dims holding positions; else None. A window op over such dims runs on each window on its own.

    >>> f0, f1, c0, c1 = Part(0, 7, True), Part(1, 7, True), Part(0, 7, False), Part(1, 7, False)
    >>> partition_windows((Merged(((c0, 2), (c1, 3))), None, f0, f1), 2, (6, 8, 7, 7))
    [(0, 7), (1, 7)]
    >>> partition_windows((c1, None, 0, f1), 2, (2, 8, 7, 7))  # H one window, W two
    [(0, 7), (1, 7)]
    >>> partition_windows((None, None, 0, 1), 2, (1, 8, 7, 7)) is None  # a plain map
    True
    """
    if len(tags) < nd or nd < 1:
        return None
    win, sizes = tags[-nd:], shape[-nd:]
    pieces = [t for t in win if isinstance(t, Part)]
    if not pieces or not all(isinstance(t, Part) and t.fine or _is_axis(t) for t in win):
        return None
    axes = [t.axis if isinstance(t, Part) else t for t in win]
    if len(set(axes)) != nd:
        return None
    elsewhere = []
    for t in tags[:-nd]:
        elsewhere.extend(x for x, _ in t) if isinstance(t, Merged) else elsewhere.append(t)
    elsewhere = [x for x in elsewhere if x is not None]
    coarse = [x for x in elsewhere if isinstance(x, Part) and not x.fine]
    if len(coarse) != len(elsewhere) or sorted((x.axis, x.factor) for x in coarse) != \
            sorted((t.axis, t.factor) for t in pieces):
        return None
    return [(t.axis, t.factor) if isinstance(t, Part) else (t, size) for t, size in zip(win, sizes)]


def with_window(tag, windows):
    """``tag`` with the pieces of each axis in ``windows`` (``{axis: new window}``) cut for windows
    of that size: an op that shrinks every window by its stride (a pooling on each window) keeps
    the number of windows, and the fine piece and the factor become the new window's.

    >>> with_window(Merged(((Part(0, 8, False), 2), (Part(1, 8, False), 3))), {0: 4, 1: 4})
    Merged((Part(0, 4, coarse), 2), (Part(1, 4, coarse), 3))
    """
    if isinstance(tag, Part) and tag.axis in windows:
        return Part(tag.axis, windows[tag.axis], tag.fine)
    if isinstance(tag, Merged):
        return Merged(tuple((with_window(x, windows), windows[x.axis] if isinstance(x, Part) and x.fine and
                             x.axis in windows else size) for x, size in tag))
    return tag


def contraction_window(tags1, tags2=None):
    """The :func:`window_mixing` plan of a matrix product that contracts the last dim of an operand
    tagged ``tags1`` (and the second-to-last of one tagged ``tags2``, when given: not a linear
    layer's weight) when that is the positions of one window: attention weights @ v within
    windows; else None."""
    contracted = [(tags1[-1], tags1[:-1])] + ([(tags2[-2], tags2[:-2] + tags2[-1:])] if tags2 is not None else [])
    plans = [window_mixing(t, others) for t, others in contracted if spatial_axes(t)]
    return plans[0] if plans and all(p is not None and p == plans[0] for p in plans) else None


def scores_window(tags1, tags2):
    """The :func:`window_mixing` plan of ``q @ kᵀ`` within windows (operands tagged ``tags1`` and
    ``tags2``, the same positions in ``q``'s rows and ``kᵀ``'s columns): entry ``(i, j)`` pairs
    two positions of one window, so the scores read that window; else None."""
    rows, cols = spatial_axes(tags1[-2]), spatial_axes(tags2[-1])
    if rows and cols and tags1[-2] == tags2[-1] and tags1[:-2] == tags2[:-2]:
        return window_mixing(tags1[-2], tags1[:-2] + tags1[-1:])
    return None


def window_steps(plan, grid, tags, naxes):
    """The ops that mix positions within windows as ``plan`` (:func:`window_mixing`) says, over an
    input of ``grid`` positions per axis, into an output tagged ``tags``: ``(steps, tags, where)``
    with ``steps`` a list of ``(op, params, short name)`` to chain, the output's tags (an axis
    whose mixed pieces are spent stands whole) and ``where`` the windows in words; or None when
    the grid does not fit.

    Per axis, a ``block`` window of ``f``: position ``o`` reads ``f*(o//f) .. f*(o//f)+f-1``, an
    average pool of kernel = stride = ``f`` then a nearest upsample by ``f``; when the output no
    longer holds the window's positions (a linear layer over ``f x f`` patches: naflexvit's patch
    embedding), the pool alone, and the output's positions are the windows'. A ``whole`` axis:
    the same with ``f`` the axis. A ``grid`` of ``G`` windows ``f`` apart: ``o`` reads
    ``o mod f + k*f`` for every ``k < G``, a conv of kernel ``2G-1``, dilation ``f`` and padding
    ``(G-1)*f`` (the padding holds no pixels: exact once clipped to the input); a conv of kernel
    ``G`` and dilation ``f`` when the output holds only the place in the window.

    >>> f0, c0 = Part(0, 4, True), Part(0, 4, False)
    >>> [(op, params) for op, params, _ in window_steps({0: ("block", 4)}, (12,), (c0, f0), 1)[0]]
    [('avgpool', {'kernel': (4,), 'stride': (4,)}), ('upsample', {'scale': (4.0,), 'mode': 'nearest'})]
    """
    if grid is None or any(grid[a] is None or grid[a] % f or kind == "whole" and f != grid[a]
                           for a, (kind, f) in plan.items()):
        return None
    pieces = {}  # axis -> fine flags of the pieces the output still holds
    whole = set()  # the axes the output still holds whole
    for t in tags:
        for x in ([p for p, _ in t] if isinstance(t, Merged) else [t]):
            if isinstance(x, Part) and x.axis in plan:
                pieces.setdefault(x.axis, set()).add(x.fine)
            elif _is_axis(x) and x in plan:
                whole.add(x)
    pool, up, conv = [1] * naxes, [1] * naxes, [(1, 1, 0)] * naxes
    collapsed = set()
    for a, (kind, f) in plan.items():
        if kind == "whole":  # one window spans the axis: every position reads all of it
            if a not in whole:
                return None
            pool[a] = up[a] = f
            continue
        held = pieces.get(a, set())
        mixed_fine = kind == "block"
        if held == {True, False}:  # the output keeps the positions of the windows
            if kind == "block":
                pool[a] = up[a] = f
            else:
                g = grid[a] // f
                conv[a] = (2 * g - 1, f, (g - 1) * f)
        elif held == {not mixed_fine}:  # the mixed positions are spent: the other pieces remain
            collapsed.add(a)
            if kind == "block":
                pool[a] = f
            else:
                conv[a] = (grid[a] // f, f, 0)
        else:
            return None
    if collapsed:
        tags = tuple(whole_axes(t, collapsed) for t in tags)
    steps = []
    if any(k > 1 for k in pool):
        steps.append(("avgpool", {"kernel": tuple(pool), "stride": tuple(pool)}, "window"))
    if any(k > 1 for k in up):
        steps.append(("upsample", {"scale": tuple(float(v) for v in up), "mode": "nearest"}, "window_back"))
    if any(k > 1 for k, _, _ in conv):
        steps.append(("conv", {"kernel": tuple(k for k, _, _ in conv), "dilation": tuple(d for _, d, _ in conv),
                               "padding": tuple(p for _, _, p in conv)}, "grid"))
    if not steps:
        return None
    where = ", ".join(f"axis {a}: " + (f"one window of all its {f}" if kind == "whole" else
                                       f"{'windows of' if kind == 'block' else 'a grid of windows'} {f}")
                      for a, (kind, f) in sorted(plan.items()))
    return steps, tags, where


def whole_axes(tag, axes):
    """``tag`` with the pieces of ``axes`` standing for the whole axis (the other piece was spent)."""
    if isinstance(tag, Part) and tag.axis in axes:
        return tag.axis
    if isinstance(tag, Merged):
        return Merged(tuple((x.axis if isinstance(x, Part) and x.axis in axes else x, size) for x, size in tag))
    return tag


def _is_axis(tag) -> bool:
    return isinstance(tag, int) and not isinstance(tag, bool)


class Rows(_Tag):
    """Tag of a dim holding ``rows`` positions of ``tag`` in order, ``width`` elements each (a
    :class:`Merged` ``((tag, rows), (None, width))``), then padded at its end: element ``i`` holds
    position ``i // width``, none from ``rows * width`` on. The first step of the
    relative-to-absolute skew of relative position logits (BoTNet's and HaloNet's
    ``rel_logits_1d``); for every other op a scrambled tag.

    >>> r = Rows(Part(1, 4, True), 4, 12)
    >>> r == frozenset({1}), r.rows, r.width
    (True, 4, 12)
    """

    __slots__ = _fields = ("tag", "rows", "width")


def padded_rows(tag, before, after):
    """The tag of a dim tagged ``tag`` after constant padding ``(before, after)``: a
    :class:`Rows` when ``tag`` is positions in order times a non-spatial width padded at the end
    only, else None.

    >>> padded_rows(Merged(((Part(1, 4, True), 4), (None, 12))), 0, 7)
    Rows(Part(1, 4, fine), 4, 12)
    >>> padded_rows(Merged(((0, 4), (1, 4))), 0, 7) is None
    True
    """
    if before or after <= 0 or not isinstance(tag, Merged) or len(tag) != 2:
        return None
    (t, rows), (none, width) = tag
    if none is not None or not (isinstance(t, Part) or isinstance(t, int) and not isinstance(t, bool)):
        return None
    return Rows(t, rows, width)


class Skew(_Tag):
    """Tag of one of the two dims a :class:`Rows` dim is viewed into, ``ncols`` elements a row:
    element ``(r, c)`` (of the kept ``rrange`` x ``crange``) is flat element ``r * ncols + c``.
    For every other op a scrambled tag; :func:`skew_slice` resolves it once the kept elements of
    each row all come from one position."""

    __slots__ = _fields = ("src", "ncols", "rrange", "crange", "is_row")

    @staticmethod
    def _axes(src, ncols, rrange, crange, is_row):
        return src

    def __repr__(self):
        return f"Skew({self.src!r}, {self.ncols}, {self.rrange}, {self.crange}, {'row' if self.is_row else 'col'})"


def skew_view(src, nrows, ncols):
    """The tags of the two dims ``(nrows, ncols)`` a :class:`Rows` dim ``src`` is viewed into."""
    rr, cc = range(nrows), range(ncols)
    return Skew(src, ncols, rr, cc, True), Skew(src, ncols, rr, cc, False)


def skew_slice(tag, kept):
    """The tags of a skewed pair of dims ``(row, col)`` after keeping ``kept`` (a range of the
    current elements) of the dim tagged ``tag``: the row dim holds the source's positions in
    order and the column dim none when element ``(r, c)`` comes from position ``r`` for every
    kept row and column, and the rows are all the source's; else the skewed tags.

    ``rel_logits_1d``: ``W`` rows of ``2w - 1`` logits padded by one column (rows of ``2w``),
    flattened, padded by ``2w - 1 - W`` and viewed as ``(W + 1, 2w - 1)``; ``[:W, w - 1:]`` keeps,
    in row ``r``, flat elements ``r (2w - 1) + w - 1 .. r (2w - 1) + 2w - 2``, whose source row
    ``(r (2w - 1) + c) // 2w`` is ``r`` for ``c`` in ``w - 1 .. 2w - 2``: all of source row ``r``.

    >>> row, col = skew_view(Rows(Part(1, 4, True), 4, 12), 5, 11)
    >>> row, col = skew_slice(row, range(0, 4))
    >>> skew_slice(col, range(5, 11))
    (Part(1, 4, fine), None)
    """
    rr = tag.rrange[kept.start:kept.stop:kept.step] if tag.is_row else tag.rrange
    cc = tag.crange if tag.is_row else tag.crange[kept.start:kept.stop:kept.step]
    src = tag.src
    if rr == range(src.rows) and all((r * tag.ncols + c) // src.width == r for r in rr for c in cc) and len(cc):
        return src.tag, None
    return Skew(src, tag.ncols, rr, cc, True), Skew(src, tag.ncols, rr, cc, False)


class Prefixed(_Tag):
    """Tag of a token dim made by concatenating constant tokens (class, register tokens) to a
    dim tagged ``tag``: elements ``before .. before + size - 1`` are that dim, the others hold
    no positions. A scrambled tag for every op but the slice taking the grid back
    (``x[:, 1:]``), which gives ``tag`` again.

    >>> p = Prefixed(Merged(((0, 3), (1, 4))), 1, 12)
    >>> p == frozenset({0, 1}), p.before, p.size
    (True, 1, 12)
    """

    __slots__ = _fields = ("tag", "before", "size")
