"""Small Qt widgets the docks are built from, one per file: each draws or edits one thing.

The docks compose them (as napari's layer controls compose one control per property) and
keep only the wiring: which model call a control makes and which layer it redraws.
"""
