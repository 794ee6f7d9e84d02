"""skelviz engine: skeletons, clips, classifiers, attacks, defences and metrics.

Torch and numpy only: nothing here imports Qt, pyqtgraph, OpenGL, ``skelviz`` or ``studies``.
"""

__version__ = "0.1.0"
