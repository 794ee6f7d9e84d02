"""Qt widgets: the main window, the 3D views and the panels (data, model, attack, defence, inspect, export)."""
