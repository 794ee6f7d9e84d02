"""Data panel: open clips and datasets, browse clips with their labels, choose what the two views show."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from engine.data import Clip

_CLIP_ROLE = QtCore.Qt.ItemDataRole.UserRole


class DataPanel(QtWidgets.QWidget):
    def __init__(self, ctx, parent=None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.session = ctx.session

        self.open_button = QtWidgets.QPushButton("Open…", self)
        self.open_button.setToolTip("Open a motion file or dataset (BVH, ASF/AMC, NTU .skeleton, HDF5, npz)")
        self.open_button.clicked.connect(ctx.open_dialog)
        self.demo_button = QtWidgets.QPushButton("Demo data", self)
        self.demo_button.setToolTip("Open the CMU demo (real motion capture) with its ST-GCN; "
                                    "File → Open demo also has the synthetic demo")
        self.demo_button.clicked.connect(lambda _checked=False: ctx.open_demo())
        self.filter = QtWidgets.QLineEdit(self)
        self.filter.setPlaceholderText("Filter by name or label")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)

        self.tree = QtWidgets.QTreeWidget(self)
        self.tree.setObjectName("clipTree")
        self.tree.setHeaderLabels(["Clip", "Label", "Frames", "fps", "Skeleton"])
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.itemDoubleClicked.connect(lambda item, _col: self.show_selected("A"))
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)

        self.show_a = QtWidgets.QPushButton("Show left (A)", self)
        self.show_a.setToolTip("Show the selected clip in the left view (double-click does the same)")
        self.show_a.clicked.connect(lambda: self.show_selected("A"))
        self.show_b = QtWidgets.QPushButton("Show right (B)", self)
        self.show_b.setToolTip("Show the selected clip in the right view to compare with the left one")
        self.show_b.clicked.connect(lambda: self.show_selected("B"))
        self.shown = QtWidgets.QLabel(self)
        self.shown.setWordWrap(True)

        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.demo_button)
        top.addStretch(1)
        bottom = QtWidgets.QHBoxLayout()
        bottom.addWidget(self.show_a)
        bottom.addWidget(self.show_b)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree, 1)
        lay.addLayout(bottom)
        lay.addWidget(self.shown)

        self.session.collections_changed.connect(self.refresh)
        self.session.scene.clip_changed.connect(lambda _s: self._update_shown())
        self.refresh()

    def refresh(self) -> None:
        self.tree.clear()
        for coll in self.session.collections:
            top = QtWidgets.QTreeWidgetItem([coll.name, f"{len(coll)} clips", "", "", ""])
            top.setToolTip(0, coll.source)
            top.setFlags(top.flags() & ~QtCore.Qt.ItemFlag.ItemIsSelectable)
            for clip in coll.clips:
                item = QtWidgets.QTreeWidgetItem(
                    [clip.title, clip.label or "", str(clip.num_frames), f"{clip.fps:g}", clip.skeleton.name]
                )
                item.setData(0, _CLIP_ROLE, clip)
                top.addChild(item)
            self.tree.addTopLevelItem(top)
        # The newest collection is the one a user just opened: show it expanded.
        if self.tree.topLevelItemCount():
            last = self.tree.topLevelItem(self.tree.topLevelItemCount() - 1)
            last.setExpanded(True)
            if last.childCount():
                self.tree.setCurrentItem(last.child(0))
        for c in range(1, 5):
            self.tree.resizeColumnToContents(c)
        self._apply_filter(self.filter.text())
        self._update_shown()

    def _apply_filter(self, text: str) -> None:
        text = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                item = top.child(j)
                hit = not text or text in item.text(0).lower() or text in item.text(1).lower()
                item.setHidden(not hit)

    def selected_clip(self) -> Clip | None:
        item = self.tree.currentItem()
        return None if item is None else item.data(0, _CLIP_ROLE)

    def show_selected(self, slot: str) -> None:
        clip = self.selected_clip()
        if clip is None:
            self.ctx.show_status("Select a clip first")
            return
        self.ctx.show_clip(slot, clip)

    def _update_shown(self) -> None:
        scene = self.session.scene
        lines = []
        for s, side in (("A", "left"), ("B", "right")):
            clip = scene.clip(s)
            lines.append(f"{side} ({s}): {clip.title if clip is not None else '—'}")
        self.shown.setText("\n".join(lines))
