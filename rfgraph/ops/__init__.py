"""The ops: one module per op family, one :class:`Op` per canonical op name, one registry.

==============  ==============================================  =======================
module          ops                                             exactness
==============  ==============================================  =======================
``source``      input                                           exact
``window``      conv, maxpool, avgpool                          exact (affine)
``convtranspose`` convtranspose                                 per position (stride>1)
``resample``    upsample, adaptive_avgpool, adaptive_maxpool    per position
``gather``      resample_map (ONNX Resize's coordinate rules)   per position
``padcrop``     pad, slice                                      exact / per position
``reorder``     flip, roll                                      per position
``pointwise``   identity                                        exact
``joins``       add, mul, concat                                union of the inputs
``global_op``   global                                          whole input
==============  ==============================================  =======================

Add an op with :func:`register_op` (see its example); :func:`registered` gives a scope whose
registrations do not leak.
"""

from .base import (Node, Op, Out, AxisState, Params, Registry, active_registry, get_op, register_op,
                   registered, registered_ops, too_small)
from . import source, window, convtranspose, resample, gather, padcrop, reorder, pointwise, joins, global_op  # noqa: F401  (register the built-ins)

__all__ = ["Op", "Node", "Out", "AxisState", "Params", "Registry", "register_op", "registered",
           "get_op", "registered_ops", "active_registry", "too_small"]
