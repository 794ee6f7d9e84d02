"""skelviz: the desktop application and command line.

This is the only package that imports PySide6, pyqtgraph or OpenGL, and it does so lazily: importing
``skelviz`` or running a headless command (``skelviz info``, ``skelviz attack`` ...) loads no Qt.
"""

__version__ = "0.1.0"
