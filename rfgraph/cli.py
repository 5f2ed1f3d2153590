"""The ``rfgraph`` command: argument parsing and I/O only; the work is in the library.

A TARGET is one of

- a graph spec file (``net.json``, see :mod:`rfgraph.frontends.spec`);
- a torchvision model name (``resnet50`` or ``torchvision:resnet50``), built without weights on
  the meta device (no memory for weights, no download) and traced with :func:`rfgraph.from_torch`;
- ``timm:NAME`` (``pretrained=False``), ``smp:ARCH:ENCODER`` (segmentation_models_pytorch,
  ``encoder_weights=None``), ``hf:MODEL_TYPE`` (a transformers model from its default config);
- ``yolo:NAME`` (an ultralytics YOLO from the yaml bundled with ultralytics: ``yolo:yolov8n``,
  ``yolo:yolo11n``, ``yolo:yolov8n-seg``) or ``path/to/model.yaml`` (an ultralytics model yaml,
  read safely: nothing in it is evaluated), no weights, at 640 px;
- ``package.module:factory`` or ``path/to/file.py:factory``: the module is imported and
  ``factory(**factory_args)`` called; it returns a ``networkx.DiGraph`` in rfgraph's schema or a
  ``torch.nn.Module``. Only these forms import user code.

Models are built on the meta device, or on the CPU when the constructor needs real tensors (one
line on stderr says so); nothing is ever downloaded (see :func:`rfgraph.tools.catalogue.build_source`).

Errors are reported as one line ``rfgraph: error: ...`` with exit status 1 (``--debug`` shows the
traceback); usage errors exit with status 2.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import importlib.util
import math
import os
import sys
from pathlib import Path

__all__ = ["main", "load_target"]

DEFAULT_SIZE = 224

_MAIN_EXAMPLES = """\
examples:
  rfgraph analyze resnet50                      per-stage table of torchvision's ResNet-50
  rfgraph analyze net.json --all-nodes --format markdown
  rfgraph analyze resnet50 --at layer3          one module's receptive field in detail
  rfgraph render resnet50 -o resnet50.svg       the network as a diagram (needs Graphviz)
  rfgraph overlay net.json --at conv2 -o rf.svg where three features of conv2 look
  rfgraph report resnet50 -o report.html        an interactive report to open in a browser
  rfgraph zoo --models 'resnet*'                the final RF of torchvision models, one row each

TARGET is a graph spec file (.json), a torchvision model name (resnet50, torchvision:resnet50),
timm:NAME, smp:ARCH:ENCODER (e.g. smp:Unet:resnet34), hf:MODEL_TYPE (e.g. hf:vit, default config),
yolo:NAME (an ultralytics YOLO from its bundled yaml: yolo:yolov8n, yolo:yolo11n, yolo:yolov8n-seg)
or an ultralytics model .yaml file, package.module:factory or path/to/file.py:factory (returns a
networkx.DiGraph or a torch.nn.Module; --factory-arg k=v passes arguments). Nothing is downloaded.
"""

_ANALYZE_EXAMPLES = """\
examples:
  rfgraph analyze resnet50
  rfgraph analyze torchvision:densenet121 --input-size 256 --format json
  rfgraph analyze net.json --all-nodes
  rfgraph analyze net.json --at add          everything about one node
  rfgraph analyze timm:convnext_tiny
  rfgraph analyze smp:Unet:resnet34 --input-size 512
  rfgraph analyze models/net.py:build --factory-arg depth=18
  rfgraph analyze raft_small --input-shape 3,224,224 --input-shape 3,224,224
  rfgraph analyze resnet50 --at layer2.1     or about one module's output
  rfgraph analyze retinanet_resnet50_fpn --levels        a detector's FPN levels: stride, RF
  rfgraph analyze yolo:yolov8n --levels --erf            YOLO's P3/P4/P5, with their ERF
  rfgraph analyze models/my-yolo.yaml --levels --format json
"""

_RENDER_EXAMPLES = """\
examples:
  rfgraph render net.json -o net.svg
  rfgraph render resnet152 -o resnet152.svg --depth 1
  rfgraph render resnet50 -o resnet50.pdf --depth all
  rfgraph render resnet50 -o resnet50.png --keep-pointwise --rankdir LR --no-legend

The format is the file's suffix (.svg, .png, .pdf or .dot); the DOT source is written next to a
picture (net.dot). A failure leaves no file behind; -o net.dot needs no Graphviz.
"""

_OVERLAY_EXAMPLES = """\
examples:
  rfgraph overlay net.json --at conv2 -o rf.svg
  rfgraph overlay resnet50 --at layer1 -o layer1.png --feature 0,0 --feature 27,27
  rfgraph overlay resnet50 --at layer2 -o rf.png --image photo.jpg   input size from the photo
  rfgraph overlay resnet50 --at layer2 -o rf.png --image photo.jpg --input-size 224   photo resized

Drawn exactly: dilation holes stay holes, a join shows each branch's footprint in its colour (a
1x3 and a 3x1 branch make a cross), the part in the padding is hatched. PNG needs matplotlib.
"""

_REPORT_EXAMPLES = """\
examples:
  rfgraph report resnet50 -o report.html
  rfgraph report net.json -o net.html --depth all      the every-node view first
  rfgraph report resnet50 -o report.html --image photo.jpg --erf

One self-contained HTML file (no network): the diagram (pan, zoom, search; a view per module depth,
modules collapse and expand), a panel per clicked node with its numbers, branches, offsets and the
exact RF of the feature under the mouse (on the input grid or --image), the ERF with --erf, and a
sortable table of every node. The diagram needs Graphviz's dot; without it the page has the table only.
"""


_ZOO_EXAMPLES = """\
examples:
  rfgraph zoo                                   every classification model at its usual input size
  rfgraph zoo --models resnet18,resnet50
  rfgraph zoo --family all --format json > zoo.json
  rfgraph zoo --models 'vgg*' --input-size 320
  rfgraph zoo --models 'efficientnet_b*' --verify   check against gradient support (CPU, slower)
  rfgraph zoo --source timm --models 'resnet18,vit_tiny*' --jobs 2
  rfgraph zoo --source timm --jobs 2 --resume timm.jsonl --format markdown > timm.md
  rfgraph zoo --source smp --models 'Unet:*,FPN:*'
  rfgraph zoo --source all --jobs 2 --backend ray   the same rows, as Ray tasks

Models are built with weights=None (timm: pretrained=False, smp: encoder_weights=None) on the
meta device: nothing is downloaded and no memory is allocated for weights. --source timm takes
every timm.list_models() architecture at its pretrained_cfg input size; --source smp every
segmentation_models_pytorch architecture with a few encoders (names ARCH:ENCODER).
With --jobs N (or --timeout) the models run in N worker processes: a model that crashes its
worker or runs past --timeout costs only its row. --resume FILE.jsonl appends each row as it
arrives; run the same command again and the models already in FILE are skipped.
--verify builds each model for real (float64) and measures its receptive field by gradient
support; models too large for the machine are skipped with the reason.
"""


_TILE_EXAMPLES = """\
examples:
  rfgraph tile unet.py:build --tile 256 --input-size 1024
  rfgraph tile resnet18 --tile 64 --format json

Prints the halo per axis (input pixels of real image each tile needs before and after it), the
grid multiple (tile origins and sizes must be multiples of it) and the stitch plan. An axis where
a global op (SE, attention, global pooling) makes outputs depend on the whole input is unbounded.
"""

_SIZES_EXAMPLES = """\
examples:
  rfgraph sizes net.json --range 32:1024
  rfgraph sizes fcn_resnet50 --format json

Lists per axis the input sizes at which every join's inputs agree and no input pixel is lost to
flooring, the smallest one and the rule in words ("multiple of 32"). Each axis is varied on its
own, the other at --input-size; models are built again at a few sizes to confirm (see METHOD).
"""

class _Failure(Exception):
    """A user-facing error raised by the CLI itself (bad target, unknown model)."""


# -- arguments ---------------------------------------------------------------------------------------


def _ints(text, what):
    try:
        vals = tuple(int(x) for x in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be comma-separated integers, got {text!r}") from None
    return vals


def _input_size(text):
    vals = _ints(text, "input size")
    if len(vals) not in (1, 2) or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"input size must be S or H,W with positive integers, got {text!r}")
    return vals


def _input_shape(text):
    vals = _ints(text, "input shape")
    if len(vals) < 2 or min(vals) < 1:
        raise argparse.ArgumentTypeError(
            f"input shape must be C,H,W (or C,L / C,T,H,W) with positive integers, got {text!r}")
    return vals


def _depth(text):
    if text in ("all", "inf"):
        return math.inf
    try:
        d = int(text)
    except ValueError:
        d = -1
    if d < 0:
        raise argparse.ArgumentTypeError(f"depth must be a non-negative integer or 'all', got {text!r}")
    return d


def _feature(text):
    return _ints(text, "feature")


def _parser():
    from .render import format_names

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default must not overwrite `rfgraph --debug <command>`
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("target", metavar="TARGET",
                        help="spec file (.json), torchvision model name, timm:NAME, smp:ARCH:ENCODER, "
                             "hf:MODEL_TYPE, yolo:NAME or an ultralytics model .yaml, "
                             "package.module:factory or path/to/file.py:factory")
    size = target.add_mutually_exclusive_group()
    size.add_argument("--input-size", type=_input_size, metavar="S",
                      help=f"input height and width: S or H,W (default {DEFAULT_SIZE} for models; "
                           "for a spec file, replaces its input size)")
    size.add_argument("--input-shape", type=_input_shape, metavar="C,H,W", action="append",
                      help="full input shape without the batch, e.g. 3,224,224; repeat it for a model "
                           "with several inputs (raft_small: --input-shape 3,224,224 --input-shape 3,224,224)")
    target.add_argument("--factory-arg", action="append", metavar="NAME=VALUE", default=None,
                        help="keyword argument for the model's constructor (repeatable); VALUE is a "
                             "Python literal (ast.literal_eval), else a string; for hf: a config field")
    target.add_argument("--on-unsupported", choices=("raise", "global", "identity"), default="raise",
                        help="torch models: what to do with an op that has no receptive-field rule: "
                             "stop with an error (default), or treat it as global or as identity "
                             "(said in the node's note)")

    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="rfgraph", formatter_class=fmt, epilog=_MAIN_EXAMPLES,
        description="Receptive fields of convolutional networks that branch.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    p.add_argument("--debug", action="store_true", default=False, help="show the full traceback on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    a = sub.add_parser("analyze", parents=[common, target], formatter_class=fmt, epilog=_ANALYZE_EXAMPLES,
                       help="print the receptive field table",
                       description="Print the receptive field (n, jump, rf, start, padding) of every "
                                   "stage (top-level module) or node.")
    a.add_argument("--format", choices=format_names("text"), default="table",
                   help="output format (default: table)")
    a.add_argument("--at", metavar="NODE_OR_MODULE", help="details of one node or module")
    a.add_argument("--all-nodes", action="store_true",
                   help="one row per node (default: one per top-level module when the graph has them)")
    a.add_argument("--sample-rate", type=_sample_rate, metavar="HZ",
                   help="1-D networks: samples per second; adds seconds, past and future context "
                        "(look-ahead) per node and whether the network is causal (table or json)")
    a.add_argument("--cover", metavar="EXTENT",
                   help="name, per path to each output, the first node whose RF covers EXTENT "
                        "(N or HxW input pixels; 1s or 25ms with --sample-rate)")
    a.add_argument("--levels", action="store_true",
                   help="one row per model output: level (P3 = stride 8), layer, size, stride, RF; on a "
                        "torchvision detector (fasterrcnn_resnet50_fpn, retinanet_resnet50_fpn, ...) its "
                        "backbone + FPN's levels (default input 800), on a YOLO (yolo:yolov8n, a .yaml) "
                        "its head's inputs (default input 640)")
    a.add_argument("--erf", action="store_true",
                   help="with --levels: each level's effective RF (rfgraph.erf at its layer, the feature "
                        "nearest the input centre): sigma and the sides of the squares holding 50%% and "
                        "99%% of the gradient mass; the model is built on the CPU with its random "
                        "initialisation under --seed (or --weights)")
    a.add_argument("--erf-samples", type=_positive, metavar="N",
                   help="random inputs averaged for --erf (default 8)")
    a.add_argument("--weights", type=Path, metavar="PATH",
                   help="with --erf: a local state dict of the whole model (.safetensors, or torch.load "
                        "weights_only); nothing is downloaded")
    a.add_argument("--seed", type=int, default=0,
                   help="with --erf: seed of the model's initialisation and the inputs (default 0)")
    a.set_defaults(run=_cmd_analyze)

    r = sub.add_parser("render", parents=[common, target], formatter_class=fmt, epilog=_RENDER_EXAMPLES,
                       help="draw the network with its receptive fields (Graphviz)",
                       description="Draw the network as a diagram annotated with receptive fields.")
    r.add_argument("-o", "--output", required=True, type=Path, help="output file (.svg, .png, .pdf, .dot)")
    r.add_argument("--format", choices=format_names("diagram"),
                   help="output format (default: from the output's suffix)")
    r.add_argument("--depth", type=_depth, metavar="N",
                   help="show modules down to depth N, collapse deeper ones ('all': every node; "
                        "default: chosen to keep large networks readable)")
    r.add_argument("--no-fold", dest="fold", action="store_false",
                   help="do not fold chains of identical blocks into one box")
    r.add_argument("--keep-pointwise", action="store_true",
                   help="draw BatchNorm, activations and other pointwise ops as boxes of their own "
                        "(default: listed inside the op that feeds them)")
    r.add_argument("--rankdir", choices=("TB", "LR", "BT", "RL"), default="TB",
                   help="layout direction (default TB: top to bottom)")
    r.add_argument("--no-legend", dest="legend", action="store_false", help="leave out the colour legend")
    r.add_argument("--title", help="the diagram's title (default: input size, nodes, misaligned joins)")
    r.set_defaults(run=_cmd_render)

    o = sub.add_parser("overlay", parents=[common, target], formatter_class=fmt, epilog=_OVERLAY_EXAMPLES,
                       help="draw where a node's features look on the input",
                       description="Draw the receptive fields of a few output features of one node "
                                   "on the input grid (SVG; PNG needs matplotlib).")
    o.add_argument("--at", required=True, metavar="NODE_OR_MODULE", help="the node or module to draw")
    o.add_argument("-o", "--output", required=True, type=Path, help="output file (.svg or .png)")
    o.add_argument("--feature", action="append", type=_feature, metavar="I,J",
                   help="output feature index per axis; repeat for several (default: first, centre, last)")
    o.add_argument("--image", type=Path, metavar="PHOTO",
                   help="draw on this picture (needs Pillow): resized to --input-size, or the input size "
                        "taken from it when none is given")
    o.set_defaults(run=_cmd_overlay)

    h = sub.add_parser("report", parents=[common, target], formatter_class=fmt, epilog=_REPORT_EXAMPLES,
                       help="write an interactive HTML report (one file, opens offline)",
                       description="Write one self-contained HTML page: the diagram with pan/zoom and "
                                   "search, a panel per node, the RF under the mouse, a sortable table.")
    h.add_argument("-o", "--output", required=True, type=Path, help="output file (.html)")
    h.add_argument("--depth", type=_depth, metavar="N", help="module depth of the diagram (as for render)")
    h.add_argument("--max-features", type=_positive, default=256, metavar="N",
                   help="embed per-feature bounds for at most N features per axis and node; longer axes "
                        "are subsampled (default 256)")
    h.add_argument("--image", type=Path, metavar="PHOTO",
                   help="draw the RF under the mouse on this picture, resized to the input grid (needs Pillow)")
    h.add_argument("--erf", action="store_true",
                   help="add the effective RF (rfgraph.erf, Luo's recipe): the model built on the CPU with "
                        "random weights (seeded), --erf-samples random inputs; its heatmap and numbers "
                        "(needs torch and matplotlib)")
    h.add_argument("--erf-at", metavar="MODULE", help="module measured by --erf (default: the last spatial map)")
    h.add_argument("--erf-samples", type=_positive, default=4, metavar="N",
                   help="random inputs for --erf (default 4)")
    h.set_defaults(run=_cmd_report)

    n = sub.add_parser("annotate", parents=[common, target], formatter_class=fmt,
                       epilog="examples:\n  rfgraph annotate model.onnx -o model.rf.onnx   then open it in Netron\n",
                       help="write receptive fields into an ONNX file (for Netron)",
                       description="Write each node's receptive field (rf, jump, start, global) into its "
                                   "doc_string and a summary into the model's metadata_props; the graph is "
                                   "unchanged.")
    n.add_argument("-o", "--output", required=True, type=Path, help="the annotated model (.onnx)")
    n.set_defaults(run=_cmd_annotate)

    z = sub.add_parser("zoo", parents=[common], formatter_class=fmt, epilog=_ZOO_EXAMPLES,
                       help="the receptive field of every model of torchvision, timm or smp",
                       description="Trace and analyse a zoo of models (torchvision's, timm's, "
                                   "segmentation_models_pytorch's): the final feature map's RF, jump, "
                                   "start and padding, whether it is global and from where, RF per stage "
                                   "(timm: per feature_info stage), nodes, misaligned joins and timings; "
                                   "optionally checked by gradient support.")
    z.add_argument("--source", default="torchvision", choices=("torchvision", "timm", "smp", "all"),
                   help="which models: torchvision's (default), timm's, segmentation_models_pytorch's, or all")
    z.add_argument("--family", default=None,
                   choices=("classification", "segmentation", "detection", "video", "optical_flow", "all"),
                   help="torchvision model family (default: classification)")
    z.add_argument("--models", metavar="PATTERN",
                   help="glob pattern(s) on model names, comma-separated (e.g. 'resnet*,vgg16'; smp: 'Unet:*')")
    z.add_argument("--input-size", type=_positive, metavar="N",
                   help="input height and width for every model (default: each model's usual size)")
    z.add_argument("--verify", action="store_true",
                   help="measure each model's RF by gradient support and report differences")
    z.add_argument("--jobs", type=_positive, default=1, metavar="N",
                   help="models in parallel, in N worker processes (default 1: in this process)")
    z.add_argument("--timeout", type=_seconds, metavar="S",
                   help="seconds per model in a worker process; past it the model's row is an error "
                        "(default 120, 600 with --verify; given with --jobs 1, one worker process)")
    z.add_argument("--backend", choices=("process", "ray"), default="process",
                   help="where the workers run: local processes (default) or Ray tasks (ray.init(): "
                        "local, or the cluster RAY_ADDRESS names; pip install 'rfgraph[ray]')")
    z.add_argument("--resume", type=Path, metavar="FILE.jsonl",
                   help="append each row to FILE as it arrives; the models FILE already holds are not "
                        "run again (same source, name and input size)")
    z.add_argument("--format", choices=("table", "markdown", "json"), default="table",
                   help="output format (default: table)")
    z.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="show the progress bar on stderr even when it is not a terminal (needs tqdm: "
                        "pip install 'rfgraph[zoo]')")
    z.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (by default it is shown on stderr when that is a terminal)")
    z.set_defaults(run=_cmd_zoo)

    t = sub.add_parser("tile", parents=[common, target], formatter_class=fmt, epilog=_TILE_EXAMPLES,
                       help="the overlap tiled inference needs to reproduce whole-image inference",
                       description="The exact halo (per axis and side), grid multiple and stitch plan "
                                   "for running the network on overlapping tiles (rfgraph.tiling).")
    t.add_argument("--tile", required=True, type=_input_size, metavar="T",
                   help="tile size in input pixels: T or H,W")
    t.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    t.set_defaults(run=_cmd_tile)

    v = sub.add_parser("sizes", parents=[common, target], formatter_class=fmt, epilog=_SIZES_EXAMPLES,
                       help="the input sizes the network accepts without losing pixels",
                       description="Valid input sizes per axis, the smallest and the rule "
                                   "(rfgraph.valid_sizes).")
    v.add_argument("--range", type=_size_range, default=(32, 1024), metavar="LO:HI",
                   help="smallest and largest size to try (default 32:1024)")
    v.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    v.set_defaults(run=_cmd_sizes)

    e = sub.add_parser("erf", parents=[common], formatter_class=fmt,
                       epilog="examples:\n  rfgraph erf resnet18 --input-size 256 --at layer3 -o erf.png\n"
                              "  rfgraph erf resnet50 --weights before.pt --weights after.pt -o erf.png\n"
                              "  rfgraph erf resnet18 resnet50 --init uniform --format json\n",
                       help="the effective receptive field beside the exact theoretical one",
                       description="Measure the effective receptive field (gradient of the unit whose exact "
                                   "TRF centre is nearest the input centre) on a real CPU model and draw it "
                                   "with its TRF (rfgraph.erf). Two targets or two --weights: side by side.")
    e.add_argument("targets", nargs="+", metavar="TARGET",
                   help="torchvision name, timm:NAME, smp:ARCH:ENCODER, hf:MODEL_TYPE, package.module:factory "
                        "or path/to/file.py:factory (built on the CPU, seeded)")
    e.add_argument("--input-size", type=_input_size, metavar="S", help=f"S or H,W (default {DEFAULT_SIZE})")
    e.add_argument("--factory-arg", action="append", metavar="NAME=VALUE", default=None,
                   help="keyword argument for the model's constructor (repeatable)")
    e.add_argument("--at", metavar="MODULE", help="module to measure (default: the last spatial map)")
    src = e.add_mutually_exclusive_group()
    src.add_argument("--samples", type=_positive, default=8, metavar="N", help="random inputs (default 8)")
    src.add_argument("--images", type=Path, metavar="DIR",
                     help="image files (Pillow; resized, ImageNet mean/std): the first 50 by name, as RepLKNet")
    e.add_argument("--init", choices=("random", "uniform"),
                   help="random: the model's own initialisation, seeded; uniform: Luo's uniform case "
                        "(default: the weights as built or loaded)")
    e.add_argument("--weights", type=Path, action="append", metavar="PATH",
                   help="local state dict (.safetensors, or torch.load weights_only); repeat for two panels")
    e.add_argument("--recipe", choices=("luo", "replknet", "openerf"), default="luo",
                   help="luo (default), replknet or openerf (see rfgraph.erf)")
    e.add_argument("--seed", type=int, default=0, help="seed of the model build and the inputs (default 0)")
    e.add_argument("--batch", type=_positive, default=8, metavar="N", help="inputs per pass (default 8)")
    e.add_argument("--device", choices=("cpu", "cuda"),
                   help="default: cuda when torch finds a GPU, else cpu")
    e.add_argument("-o", "--output", type=Path, help="picture (.png, .svg, .pdf)")
    e.add_argument("--format", choices=("text", "json"), default="text", help="metrics on stdout (default text)")
    e.set_defaults(run=_cmd_erf)
    return p


def _positive(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _positive_number(what):
    """An argparse type: a finite number > 0, ``what`` naming it in the error."""
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            v = 0.0
        if not v > 0 or v == float("inf"):
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
        return v
    return parse


_seconds = _positive_number("expected a positive number of seconds")
_sample_rate = _positive_number("sample rate must be a positive number of Hz")


def _version():
    from . import __version__

    return __version__


# -- targets -----------------------------------------------------------------------------------------


def load_target(target, input_size=None, input_shape=None, on_unsupported="raise", factory_args=None, part=""):
    """The graph a TARGET names (see the module docstring).

    ``input_size`` is ``(S,)`` or ``(H, W)``; ``input_shape`` is ``(C, ...)`` or a list of such
    shapes (one per model input). For models the default is the source's (``(3, 224, 224)`` for
    torchvision and factories, the pretrained config's for timm, the config's for hf); for a spec
    file either one replaces every input node's size. ``factory_args`` (``["k=v", ...]`` or a
    dict) go to the model's constructor. ``on_unsupported`` is passed to :func:`rfgraph.from_torch`.
    ``part`` names a submodule traced instead of the model (``"backbone"``: a torchvision
    detector's backbone + FPN, at the detector's usual input size by default).
    """
    from .frontends.spec import read_spec

    shapes = None
    if input_shape is not None:
        shapes = [tuple(s) for s in input_shape] if input_shape and isinstance(input_shape[0], (list, tuple)) \
            else [tuple(input_shape)]
    path = Path(target)
    if target.endswith(".onnx"):
        from .frontends.onnx import from_onnx

        return from_onnx(path, input_size=shapes[0][1:] if shapes else input_size,
                         on_unsupported=on_unsupported)
    yolo = _is_yolo(target)  # an ultralytics model yaml, a file or a bundled name: built, not read
    if not yolo and (target.endswith(".json") or path.is_file()):
        G = read_spec(path)
        spatial = shapes[0][1:] if shapes else input_size
        return _resize_inputs(G, spatial) if spatial else G
    prefix, colon, rest = target.partition(":")
    if not colon and not yolo and ("/" in target or os.sep in target):
        # a path, not a model name: say so before spending seconds importing torch
        raise FileNotFoundError(errno.ENOENT, "no such file", target)
    if not yolo and (not colon or prefix == "torchvision"):
        _check_torchvision_name(rest if colon else target)
    built = _build(target, factory_args)
    if built.note:
        print(f"rfgraph: {target}: {built.note}", file=sys.stderr)
    obj = _part(built.model, part)
    import networkx as nx

    if isinstance(obj, nx.DiGraph):
        if shapes or input_size:
            return _resize_inputs(obj, shapes[0][1:] if shapes else input_size)
        return obj
    if not _is_module(obj):
        raise _Failure(f"{target} gave a {type(obj).__name__}; expected a networkx.DiGraph or a torch.nn.Module")
    if shapes is None:
        default = list(built.input_shapes)
        if built.source in ("torchvision", "module", "file") and not part:
            default = [(3, DEFAULT_SIZE, DEFAULT_SIZE)] * len(default)
        if input_size is not None:
            spatial = input_size * 2 if len(input_size) == 1 else tuple(input_size)
            default = [s[:-len(spatial)] + tuple(spatial) for s in default]
        shapes = default
    obj.eval()
    return _trace(obj, shapes if len(shapes) > 1 else shapes[0], on_unsupported)


def _is_yolo(target):
    from .tools.catalogue import parse_source

    try:
        return parse_source(target)[0] == "yolo"
    except ValueError:  # timm: and the like, which _build reports
        return False


def _build(target, factory_args, make=None):
    """:func:`rfgraph.tools.catalogue.build_source`, its errors as one-line CLI failures."""
    from .tools import catalogue

    try:
        kwargs = factory_args if isinstance(factory_args, dict) else catalogue.parse_factory_args(factory_args)
        return catalogue.build_source(target, factory_args=kwargs, make=make)
    except ModuleNotFoundError as exc:
        source, parts = catalogue.parse_source(target)
        extra = {"timm": "timm", "smp": "smp", "hf": "transformers", "torchvision": "torch",
                 "yolo": "ultralytics"}.get(source)
        if extra and exc.name in ("torch", "torchvision", "timm", "segmentation_models_pytorch", "transformers",
                                  "ultralytics"):
            raise _Failure(f"{target!r} needs {exc.name}: pip install 'rfgraph[{extra}]'") from None
        if source == "module" and exc.name and parts[0].startswith(exc.name):
            raise _Failure(f"cannot import {parts[0]!r}: {exc}") from None
        raise
    except (ValueError, AttributeError) as exc:
        raise _Failure(str(exc)) from None


def _check_torchvision_name(name):
    try:
        import torch  # noqa: F401
        import torchvision
    except ModuleNotFoundError:
        raise _Failure(f"{name!r} is not a file, and torchvision model names need torch and torchvision: "
                       "pip install 'rfgraph[torch]'") from None
    known = torchvision.models.list_models()
    if name.lower() not in known:
        close = difflib.get_close_matches(name.lower(), known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise _Failure(f"unknown model {name!r}: not a file and not a torchvision model{hint} "
                       "(torchvision.models.list_models() lists them)")


def _resize_inputs(G, spatial):
    G = G.copy()  # the caller's graph is never modified
    for v, attrs in G.nodes(data=True):
        if attrs.get("op") == "input":
            old = attrs.get("size", ())
            naxes = len(old) if isinstance(old, (list, tuple)) else 1
            if len(spatial) == 1:
                attrs["size"] = tuple(spatial) * naxes
            elif len(spatial) == naxes:
                attrs["size"] = tuple(spatial)
            else:
                raise _Failure(f"input {v!r} has {naxes} spatial axes; the given size has {len(spatial)}")
    return G


def _trace(model, shape, on_unsupported="raise"):
    try:
        from .frontends.torch import from_torch
    except ModuleNotFoundError as exc:
        if exc.name in ("torch", "torchvision"):
            raise _Failure("this target needs PyTorch: pip install 'rfgraph[torch]'") from None
        if exc.name == "rfgraph.frontends.torch":
            raise _Failure("the PyTorch front-end (rfgraph.frontends.torch) is not available in this "
                           "installation; use a graph spec file instead") from None
        raise
    return from_torch(model, shape, on_unsupported=on_unsupported)


def _is_module(obj):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


# -- commands ----------------------------------------------------------------------------------------


def _analysis(args):
    from .engine import analyze

    G = load_target(args.target, args.input_size, args.input_shape, args.on_unsupported,
                    factory_args=getattr(args, "factory_arg", None), part=_levels_part(args))
    return analyze(G)


def _levels_part(args):
    """For ``--levels``, the part whose outputs are the levels (:func:`catalogue.levels_part`:
    a torchvision detector's ``"backbone"`` + FPN, a YOLO's ``"neck"``), else ``""``."""
    if not getattr(args, "levels", False):
        return ""
    from .tools.catalogue import levels_part

    try:
        return levels_part(args.target)
    except ValueError:  # not a source name: load_target says why
        return ""


def _part(model, part):
    from .tools.catalogue import model_part

    try:
        return model_part(model, part)
    except ValueError as exc:
        raise _Failure(str(exc)) from None


def _resolve(analysis, name):
    """``(node, module)`` for a node name or a module qualname."""
    from .schema import module_outputs

    if name in analysis:
        return name, None
    for v in analysis.order:
        if str(v) == name:  # integer node names typed on the command line
            return v, None
    try:
        return analysis.module(name).name, name
    except KeyError:
        pass
    modules = set(module_outputs(analysis.graph))
    for v in analysis.order:
        m = analysis.graph.nodes[v].get("module")
        if m:
            modules.add(m)
    # a name that exists but resolves to nothing must not be suggested as its own fix
    close = [c for c in difflib.get_close_matches(name, sorted(map(str, analysis.order)) + sorted(modules), n=4)
             if c != name][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise _Failure(f"no node or module named {name!r}{hint}")


def _cmd_analyze(args, out):
    from .render import get_format
    from .render.table import describe

    erf = getattr(args, "erf", False)
    if erf and not args.levels:
        raise _Failure("--erf goes with --levels (rfgraph erf TARGET --at MODULE measures one module)")
    if not erf and (getattr(args, "weights", None) is not None or getattr(args, "erf_samples", None) is not None):
        raise _Failure("--weights and --erf-samples go with --levels --erf")
    analysis = _analysis(args)
    nodes = modules = None
    if args.at is not None:
        node, module = _resolve(analysis, args.at)
        if args.format == "table":
            out.write(describe(analysis[node], module=module) + "\n")
            return 0
        nodes, modules = [node], (None if module is None else {module: node})
    elif args.all_nodes:
        nodes = list(analysis.order)
    if getattr(args, "cover", None) is not None or getattr(args, "levels", False):
        return _write_queries(args, out, analysis)
    if getattr(args, "sample_rate", None) is not None:
        return _write_streaming(args, out, analysis, nodes, modules)
    out.write(get_format(args.format, "text").render(analysis, nodes=nodes, modules=modules))
    return 0


def _write_queries(args, out, analysis):
    import json

    from .answers import queries

    if args.format not in ("table", "json"):
        raise _Failure(f"--cover and --levels print a table or json, not {args.format}")
    docs = {}
    if args.cover is not None:
        extent = queries.parse_extent(args.cover, len(analysis.input_size), getattr(args, "sample_rate", None))
        docs["cover"] = queries.cover(analysis, extent)
    if args.levels and getattr(args, "erf", False):
        if args.input_shape and len(args.input_shape) > 1:
            raise _Failure("--erf measures models with one input")
        model, shape = _erf_model(args.target, args.factory_arg, args.seed, tuple(analysis.input_size),
                                  weights=args.weights, part=_levels_part(args),
                                  channels=args.input_shape[0][0] if args.input_shape else None)
        docs["levels"] = queries.levels(analysis, model=model, input_shape=shape,
                                        erf={"samples": args.erf_samples or 8, "seed": args.seed})
    elif args.levels:
        docs["levels"] = queries.levels(analysis)
    if args.format == "json":
        data = {k: (v.as_dict() if k == "cover" else [lv.as_dict() for lv in v]) for k, v in docs.items()}
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        out.write("".join(queries.cover_text(v) if k == "cover" else queries.levels_text(v) for k, v in docs.items()))
    return 0


def _write_streaming(args, out, analysis, nodes, modules):
    from .answers.streaming import to_json, to_text

    if args.format not in ("table", "json"):
        raise _Failure(f"--sample-rate prints a table or json, not {args.format}")
    render = to_json if args.format == "json" else to_text
    out.write(render(analysis, args.sample_rate, nodes=nodes, modules=modules))
    return 0


def _cmd_render(args, out):
    from .render.graphviz import dot_path_for, write_diagram

    analysis = _analysis(args)
    path = write_diagram(analysis, args.output, format=args.format, depth=args.depth, fold=args.fold,
                         keep_pointwise=args.keep_pointwise, rankdir=args.rankdir, legend=args.legend,
                         title=args.title)
    src = dot_path_for(path, args.format)
    out.write(f"wrote {path}\n" if src == path else f"wrote {path} (DOT source: {src})\n")
    return 0


def _cmd_overlay(args, out):
    from .render.overlay import load_image, overlay

    image = None
    if args.image is not None:
        image = load_image(args.image)  # read before building: a bad photo fails fast
        if args.input_size is None and args.input_shape is None:
            args.input_size = image.shape[:2]
    analysis = _analysis(args)
    node, _ = _resolve(analysis, args.at)
    path = overlay(analysis, node, args.output, features=args.feature, image=image)
    out.write(f"wrote {path}\n")
    return 0



def _cmd_report(args, out):
    from .errors import MissingDependencyError
    from .render._files import write_atomic
    from .render.graphviz import report_views
    from .render.html import to_html

    if args.output.suffix.lower() not in (".html", ".htm"):
        raise _Failure(f"{args.output.name}: the report is an HTML file; name it .html")
    if args.output.is_dir() or not args.output.parent.is_dir():
        raise _Failure(f"cannot write {args.output}: not a file in an existing folder")
    if args.erf and _is_file_target(args.target):
        raise _Failure(f"--erf needs a torch model to differentiate; {args.target!r} is a file "
                       "(use a model name or package.module:factory)")
    image = None
    if args.image is not None:
        from .render.overlay import load_image

        image = load_image(args.image)  # read before building: a bad photo fails fast
    analysis = _analysis(args)
    try:
        views = report_views(analysis, depth=args.depth)
    except MissingDependencyError:
        print("rfgraph: Graphviz's dot was not found: the report has no diagram", file=sys.stderr)
        views = []
    result = None
    if args.erf:
        from .answers.erf import erf

        model, shape = _erf_model(args.target, args.factory_arg, 0, tuple(analysis.input_size))
        result = erf(model, shape, args.erf_at, init="random", samples=args.erf_samples, seed=0)
    # built whole in memory, then written at once: a failure above leaves no file
    page = to_html(analysis, title=f"rfgraph report: {args.target}", max_features=args.max_features,
                   views=views, image=image, erf=result)
    write_atomic(args.output, page)
    out.write(f"wrote {args.output}\n")
    return 0


def _cmd_annotate(args, out):
    import tempfile

    from .frontends.onnx import annotate_onnx

    if not args.target.endswith(".onnx"):
        raise _Failure(f"annotate reads an ONNX file (model.onnx), got {args.target!r}")
    size = args.input_shape[1:] if args.input_shape else args.input_size
    model, analysis = annotate_onnx(args.target, input_size=size, on_unsupported=args.on_unsupported)
    import onnx

    target = os.path.abspath(args.output)
    # a temporary file in the same directory, renamed over the output: never a partial file
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    out.write(f"wrote {args.output} ({len(analysis.order)} nodes annotated in doc_string, summary in "
              "metadata_props)\n")
    return 0


def _cmd_tile(args, out):
    import json

    from .answers.tiling import tiling, to_text

    analysis = _analysis(args)
    tile = args.tile * len(analysis.input_size) if len(args.tile) == 1 else args.tile
    result = tiling(analysis, tile=tile)
    out.write(json.dumps(result.as_dict(), indent=2) + "\n" if args.format == "json" else to_text(result))
    return 0


def _size_range(text):
    lo, sep, hi = text.partition(":")
    try:
        lo, hi = int(lo), int(hi)
    except ValueError:
        lo = hi = 0
    if not sep or lo < 1 or hi < lo:
        raise argparse.ArgumentTypeError(f"range must be LO:HI with 1 <= LO <= HI, got {text!r}")
    return lo, hi


def _cmd_sizes(args, out):
    import json

    from .answers.sizes import made_sizes, to_text

    def make(size):  # the target built again at this size, exactly as `analyze --input-size` would
        again = argparse.Namespace(**vars(args))
        again.input_size, again.input_shape = tuple(size), None
        return _analysis(again).graph

    base = _analysis(args).input_size
    result = made_sizes(make, base, args.range, what="the target built")
    out.write(json.dumps(result.as_dict(), indent=2) + "\n" if args.format == "json" else to_text(result))
    return 0


def _is_file_target(target) -> bool:
    """A spec or ONNX file (not a model to build and differentiate); YOLO yaml files are models."""
    return target.endswith((".json", ".onnx")) or (Path(target).is_file() and not _is_yolo(target))


def _erf_model(target, factory_arg, seed, input_size, *, weights=None, part="", channels=None):
    """``(model, input_shape)`` for :func:`rfgraph.erf`: the target built on the CPU under ``seed``
    (its own initialisation, reproducible), ``weights`` (a file) loaded into the whole model, cut
    to ``part`` (see ``--levels``), at ``input_size`` (S or H,W; default the source's) with
    ``channels`` (default the source's)."""
    if _is_file_target(target):
        raise _Failure(f"erf needs a torch model to differentiate; {target!r} is a file (use a model name, "
                       "yolo:NAME or package.module:factory)")
    try:
        import torch
    except ModuleNotFoundError:
        raise _Failure("erf needs PyTorch: pip install 'rfgraph[torch]'") from None
    if ":" not in target or target.startswith("torchvision:"):
        _check_torchvision_name(target.partition(":")[2] or target)
    torch.manual_seed(seed)
    built = _build(target, factory_arg, make=lambda f, *a, **kw: (f(*a, **kw), ""))
    if not _is_module(built.model):
        raise _Failure(f"erf needs a torch.nn.Module; {target} gave a {type(built.model).__name__}")
    model = built.model
    if weights is not None:
        from .answers.erf import load_weights

        load_weights(model, weights)
    if part:
        model = _part(model, part)
    shape = tuple(built.input_shapes[0])
    if built.source in ("torchvision", "module", "file") and len(shape) == 3:
        shape = (shape[0], DEFAULT_SIZE, DEFAULT_SIZE)
    if input_size is not None:
        spatial = tuple(input_size) * (len(shape) - 1 if len(input_size) == 1 else 1)
        shape = shape[:1] + spatial
    if channels is not None:
        shape = (channels,) + shape[1:]
    return model.eval(), shape


def _cmd_erf(args, out):
    import json

    from .answers.erf import erf

    if args.output is None and args.format != "json":
        raise _Failure("erf needs -o PICTURE (.png, .svg, .pdf) or --format json")
    weights = args.weights or [None]
    if len(args.targets) > 1 and len(weights) > 1:
        raise _Failure("give two targets or two --weights, not both")
    runs = [(t, w) for t in args.targets for w in weights]
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        raise _Failure("erf needs PyTorch: pip install 'rfgraph[torch]'") from None
    results, titles, cache = [], [], {}
    for target, w in runs:
        if _is_file_target(target):
            raise _Failure(f"erf needs a torch model to differentiate; {target!r} is a file (use a model name "
                           "or package.module:factory)")
        if target not in cache:
            cache[target] = _erf_model(target, args.factory_arg, args.seed, args.input_size)
        model, shape = cache[target]
        progress = sys.stderr is not None and sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None
        r = erf(model, shape, args.at, init=args.init, weights=w, recipe=args.recipe, seed=args.seed,
                samples=50 if args.images else args.samples, images=args.images, batch=args.batch,
                device=args.device, progress=progress)
        results.append(r)
        titles.append(f"{target}" + (f" ({w.name})" if w else "") + f", {r.module} at "
                      + "x".join(map(str, shape[1:])))
    if args.output is not None:
        from .render.erf_plot import plot_erf

        plot_erf(results, args.output, titles=titles)
    if args.format == "json":
        docs = [dict(r.as_dict(), target=t) for r, (t, _) in zip(results, runs)]
        out.write(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2) + "\n")
    else:
        from .render.erf_plot import caption

        for title, r in zip(titles, results):
            out.write(f"{title}\n" + "\n".join("  " + line for line in caption(r).splitlines()) + "\n")
    if args.output is not None:
        out.write(f"wrote {args.output}\n")
    return 0


_ZOO_EXTRAS = {"torch": "torch", "torchvision": "torch", "timm": "timm", "segmentation_models_pytorch": "smp"}


def _zoo_entries(args):
    from .tools.catalogue import list_source

    if args.family is not None and args.source not in ("torchvision", "all"):
        raise _Failure(f"--family picks torchvision models; it does not apply to --source {args.source}")
    try:
        from .frontends import torch as _  # noqa: F401 - fail early without torch
        entries = list_source(args.source, args.family, args.models, args.input_size)
    except ModuleNotFoundError as exc:
        extra = _ZOO_EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        what = "rfgraph zoo" if extra == "torch" else f"rfgraph zoo --source {args.source}"
        raise _Failure(f"{what} needs {exc.name}: pip install 'rfgraph[{extra}]'") from None
    if not entries:
        where = {"timm": "timm.list_models() lists them", "smp": "names are ARCH:ENCODER, e.g. Unet:resnet34",
                 "all": "torchvision, timm and smp names"}.get(args.source, "torchvision.models.list_models() lists them")
        family = f"{args.family or 'classification'} " if args.source == "torchvision" and args.family != "all" else ""
        source = "" if args.source in ("torchvision", "all") else f"{args.source} "
        raise _Failure(f"no {source}{family}model matches {args.models!r} ({where})")
    return entries


def _cmd_zoo(args, out):
    entries = _zoo_entries(args)
    from .render import zoo as report
    from .tools import runner

    if args.progress and importlib.util.find_spec("tqdm") is None:
        raise _Failure("--progress needs tqdm: pip install 'rfgraph[zoo]'")
    if args.backend == "ray" and importlib.util.find_spec("ray") is None:
        raise _Failure("--backend ray needs ray: pip install 'rfgraph[ray]'")
    with runner.progress_bar(len(entries), enabled=args.progress, file=sys.stderr) as progress:
        rows, info = runner.sweep(entries, resume=args.resume, verify=args.verify, jobs=args.jobs,
                                  timeout=args.timeout, backend=args.backend, progress=progress)
    if args.format in ("json", "markdown"):
        info["machine"] = runner.machine()
        out.write((report.to_json if args.format == "json" else report.to_markdown)(rows, info))
    else:
        out.write(report.format_rows(rows, verified=args.verify) + "\n")
        ok = [r for r in rows if r.ok]
        k = info.get("resumed", 0)
        resumed = f" ({k} row{'' if k == 1 else 's'} read back from {args.resume})" if k else ""
        out.write(f"\n{len(ok)} of {len(rows)} models analysed in {info['wall_s']:.1f} s{resumed}"
                  + (f", peak RSS {info['peak_rss_mb']:.0f} MB" if info.get("peak_rss_mb") else "") + "\n")
        if args.verify:
            for r in rows:
                for m in r.verify.get("mismatches", []):
                    out.write(f"mismatch: {r.model}: {m}\n")
    failed = [r.model for r in rows if not r.ok]
    if failed:
        raise _Failure(f"{len(failed)} of {len(rows)} models failed: {', '.join(failed[:5])}"
                       f"{', ...' if len(failed) > 5 else ''} (see the error column)")
    bad = [r.model for r in rows if r.verify.get("status") in ("mismatch", "error")]
    if bad:
        raise _Failure(f"gradient support disagrees with rfgraph (or the check failed) for {len(bad)} "
                       f"model{'s' if len(bad) > 1 else ''}: {', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}")
    return 0


# -- entry point -------------------------------------------------------------------------------------


def _message(exc) -> str:
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, FileNotFoundError) and exc.filename:
        text = f"no such file: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())  # one line, whatever the message


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage error)."""
    from .errors import RFGraphError

    parser = _parser()
    args = parser.parse_args(argv)
    out = sys.stdout
    if out is None or out.closed:  # started with stdout closed (`rfgraph ... >&-`): nothing to show
        out = open(os.devnull, "w")
    try:
        status = args.run(args, out)
        out.flush()  # here, not at exit, so a reader that left is handled below
        return status
    except BrokenPipeError:
        # `rfgraph analyze ... | head`: the reader left; not an error worth a traceback. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, out.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except (RFGraphError, _Failure, FileNotFoundError, KeyError, OSError) as exc:
        if args.debug:
            raise
        print(f"rfgraph: error: {_message(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, or an error from user code (a factory, a model's forward)
        if args.debug:
            raise
        print(f"rfgraph: error: {type(exc).__name__}: {_message(exc)} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
