"""Tools around the library that need torch and torchvision (``pip install 'rfgraph[torch,zoo]'``).

:mod:`~rfgraph.tools.catalogue` says which torchvision models the zoo covers and builds them (the
one builder, also behind the CLI's model-name targets); :mod:`~rfgraph.tools.runner` analyses and
verifies them, one summary row per model; :mod:`~rfgraph.tools.verify` is the gradient-support
oracle. Their report is a renderer, :mod:`rfgraph.render.zoo`. The core never imports this package.
"""
