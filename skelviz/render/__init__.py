"""pyqtgraph GL adapters: skeleton visuals, the 3D view, colour maps and offscreen capture."""
