"""The main window: two 3D views with shared playback, the panels as docks, menus, settings, errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from engine import api
from engine.assets import DEFAULT_DEMO, DEMOS
from engine.data import Clip
from engine.errors import CheckpointError, MissingCompanionFileError, SkelvizError
from skelviz.model.scene import COLOUR_MODES
from skelviz.model.session import Session
from skelviz.model.settings import Settings, Store
from skelviz.render.colors import COLORMAPS
from skelviz.widgets.attack_panel import AttackPanel
from skelviz.widgets.data_panel import DataPanel
from skelviz.widgets.defence_panel import DefencePanel
from skelviz.widgets.export_panel import ExportPanel
from skelviz.widgets.inspect_panel import InspectPanel
from skelviz.widgets.model_panel import ModelPanel
from skelviz.widgets.playback_bar import PlaybackBar, PlaybackDriver
from skelviz.widgets.views import ViewsWidget
from skelviz.workers import WorkerPool

log = logging.getLogger(__name__)

OPEN_FILTER = (
    "Motion files (*.bvh *.amc *.asf *.skeleton *.h5 *.hdf5 *.npz *.npy);;"
    "BVH (*.bvh);;Acclaim (*.amc *.asf);;NTU RGB+D (*.skeleton);;HDF5 (*.h5 *.hdf5);;NumPy (*.npz *.npy);;"
    "All files (*)"
)
CHECKPOINT_FILTER = "Checkpoints (*.pt *.pth *.ckpt);;All files (*)"

ErrorReporter = Callable[[str, str], None]


class MainWindow(QtWidgets.QMainWindow):
    """``store`` persists settings (QSettings by default; tests pass a :class:`MemoryStore` or an INI file).
    ``error_reporter(title, message)`` shows errors (a non-blocking message box by default)."""

    def __init__(self, store: Store | None = None, error_reporter: ErrorReporter | None = None) -> None:
        super().__init__()
        self.store = store if store is not None else QtCore.QSettings()
        self.errors: list[tuple[str, str]] = []  # every error shown, newest last (for tests and the log)
        self._error_reporter = error_reporter if error_reporter is not None else self._message_box
        self.session = Session(Settings.load(self.store))
        self.settings = self.session.settings
        self.workers = WorkerPool(self)
        self._prediction_gen = {"A": 0, "B": 0}
        self.loading = 0  # files and checkpoints being read

        self.setWindowTitle("skelviz — adversarial skeleton motion")
        self.setAcceptDrops(True)
        self.setDockOptions(
            QtWidgets.QMainWindow.DockOption.AnimatedDocks | QtWidgets.QMainWindow.DockOption.AllowTabbedDocks
        )

        scene, playback = self.session.scene, self.session.playback
        self.views = ViewsWidget(scene, playback, self)
        self.playback_bar = PlaybackBar(playback, self)
        self.driver = PlaybackDriver(playback, self)
        central = QtWidgets.QWidget(self)
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(2)
        lay.addWidget(self.views, 1)
        lay.addWidget(self.playback_bar)
        self.setCentralWidget(central)

        self.data_panel = DataPanel(self)
        self.model_panel = ModelPanel(self)
        self.attack_panel = AttackPanel(self)
        self.defence_panel = DefencePanel(self)
        self.export_panel = ExportPanel(self, self.views)
        self.inspect_panel = InspectPanel(self)
        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        right = QtCore.Qt.DockWidgetArea.RightDockWidgetArea
        for name, panel in (
            ("Data", self.data_panel),
            ("Model", self.model_panel),
            ("Attack", self.attack_panel),
            ("Defence", self.defence_panel),
            ("Export", self.export_panel),
        ):
            dock = self._dock(name, panel, right, scroll=name in ("Defence", "Export"))
            if len(self.docks) > 1:
                self.tabifyDockWidget(self.docks["Data"], dock)
        self._dock("Inspect", self.inspect_panel, QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setTabPosition(right, QtWidgets.QTabWidget.TabPosition.North)
        self.resizeDocks([self.docks["Data"]], [430], QtCore.Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["Inspect"]], [250], QtCore.Qt.Orientation.Vertical)

        self.status_label = QtWidgets.QLabel(self)
        self.statusBar().addPermanentWidget(self.status_label)
        self.views.jointInfo.connect(lambda text: self.statusBar().showMessage(text))

        self._build_toolbar()
        self._build_menus()
        self._build_shortcuts()
        self._apply_settings()

        scene.clip_changed.connect(self._on_clip_changed)
        self.session.classifier_changed.connect(lambda _c: self._predict_all())
        self.session.collections_changed.connect(self._update_status)
        self.session.classifier_changed.connect(lambda _c: self._update_status())
        self._restore_layout()
        self._update_status()

    # -- construction -------------------------------------------------------------------------------------
    def _dock(self, name: str, panel: QtWidgets.QWidget, area, scroll: bool = False) -> QtWidgets.QDockWidget:
        dock = QtWidgets.QDockWidget(name, self)
        dock.setObjectName(f"dock{name}")
        if scroll:
            area_widget = QtWidgets.QScrollArea(dock)
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
            area_widget.setWidget(panel)
            dock.setWidget(area_widget)
        else:
            dock.setWidget(panel)
        dock.setFeatures(
            QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        self.docks[name] = dock
        return dock

    def _action(self, text: str, slot, shortcut=None, checkable=False, checked=False, tip="") -> QtGui.QAction:
        act = QtGui.QAction(text, self)
        if shortcut:
            act.setShortcut(QtGui.QKeySequence(shortcut))
        act.setCheckable(checkable)
        if checkable:
            act.setChecked(checked)
            act.toggled.connect(slot)
        else:
            act.triggered.connect(slot)
        if tip:
            act.setToolTip(tip)
            act.setStatusTip(tip)
        return act

    def _build_toolbar(self) -> None:
        s = self.settings
        tb = self.addToolBar("View")
        tb.setObjectName("viewToolbar")
        tb.setMovable(False)
        self.overlay_action = self._action(
            "Overlay", self.session.scene.set_overlay, "O", True, s.overlay, "Draw both clips in one view"
        )
        self.link_action = self._action(
            "Link cameras", self._set_linked, "L", True, s.linked_cameras, "Move both views' cameras together"
        )
        self.grid_action = self._action("Grid", self._set_grid, "G", True, s.show_grid, "Show the ground grid")
        self.trails_action = self._action(
            "Trails", self._set_trails, "T", True, s.show_trails, "Show trails of the end joints"
        )
        self.follow_action = self._action(
            "Follow", self.views.set_follow, "F", True, True, "Keep the performer centred while the clip plays"
        )
        self.reset_action = self._action("Reset view", lambda: self.views.reset_cameras("default"), "R")
        for act in (self.overlay_action, self.link_action, self.grid_action, self.trails_action, self.follow_action):
            tb.addAction(act)
        tb.addSeparator()
        tb.addAction(self.reset_action)
        self.preset_actions = {}
        for i, name in enumerate(("front", "side", "top"), start=1):
            act = self._action(name.capitalize(), lambda _=False, n=name: self.views.reset_cameras(n), str(i))
            act.setToolTip(f"{name.capitalize()} view ({i})")
            self.preset_actions[name] = act
            tb.addAction(act)
        tb.addSeparator()
        tb.addWidget(QtWidgets.QLabel(" Bone colour ", self))
        self.colour_box = QtWidgets.QComboBox(self)
        self.colour_box.setObjectName("colourMode")
        for key, (label, _pb, _u) in COLOUR_MODES.items():
            self.colour_box.addItem(label, key)
        self.colour_box.currentIndexChanged.connect(
            lambda _i: self.session.scene.set_colour_mode(self.colour_box.currentData())
        )
        tb.addWidget(self.colour_box)
        self.cmap_box = QtWidgets.QComboBox(self)
        self.cmap_box.setObjectName("colormap")
        self.cmap_box.setToolTip("Colormap of the bone colouring")
        for name in COLORMAPS:
            self.cmap_box.addItem(name)
        self.cmap_box.currentTextChanged.connect(self._set_colormap)
        tb.addWidget(self.cmap_box)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addAction(self._action("&Open…", self.open_dialog, QtGui.QKeySequence.StandardKey.Open))
        self.recent_menu = file.addMenu("Open &recent")
        demo_menu = file.addMenu("Open &demo")
        for key, demo in DEMOS.items():
            demo_menu.addAction(self._action(demo.title, lambda _=False, k=key: self.open_demo(k)))
        file.addSeparator()
        file.addAction(self._action("Load &checkpoint…", self.load_checkpoint_dialog, "Ctrl+K"))
        file.addSeparator()
        file.addAction(self._action("Save &screenshot…", self.export_panel._png_dialog, "Ctrl+Shift+S"))
        file.addAction(self._action("&Export video…", self.export_panel._video_dialog, "Ctrl+E"))
        file.addSeparator()
        file.addAction(self._action("&Quit", self.close, QtGui.QKeySequence.StandardKey.Quit))
        view = bar.addMenu("&View")
        for act in (self.overlay_action, self.link_action, self.grid_action, self.trails_action, self.follow_action):
            view.addAction(act)
        view.addSeparator()
        view.addAction(self.reset_action)
        for act in self.preset_actions.values():
            view.addAction(act)
        view.addSeparator()
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        self.study_menu = bar.addMenu("&Study")
        self.study_action = self._action("&Run study…", self.run_study)
        self.study_menu.addAction(self.study_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&Keyboard shortcuts", self._show_keys))
        help_menu.addAction(self._action("&About skelviz", self._about))
        self._refresh_recent()

    def _build_shortcuts(self) -> None:
        pb = self.session.playback
        for key, slot in (
            (QtCore.Qt.Key.Key_Space, pb.toggle),
            (QtCore.Qt.Key.Key_Right, lambda: pb.step(1)),
            (QtCore.Qt.Key.Key_Left, lambda: pb.step(-1)),
            (QtCore.Qt.Key.Key_Home, pb.home),
            (QtCore.Qt.Key.Key_End, pb.end),
        ):
            sc = QtGui.QShortcut(QtGui.QKeySequence(key), self)
            sc.activated.connect(slot)

    # -- settings -----------------------------------------------------------------------------------------
    def _apply_settings(self) -> None:
        s = self.settings
        self.session.scene.set_overlay(s.overlay)
        self.views._on_overlay_changed(s.overlay)
        self.views.set_linked(s.linked_cameras)
        self.views.set_grid(s.show_grid)
        self.views.set_trails(s.show_trails)
        mode = s.colour_mode if s.colour_mode in COLOUR_MODES else "bone_length"
        self.colour_box.setCurrentIndex(self.colour_box.findData(mode))
        self.session.scene.set_colour_mode(mode)
        cmap = s.colormap if s.colormap in COLORMAPS else COLORMAPS[0]
        self.cmap_box.setCurrentText(cmap)
        self._set_colormap(cmap)

    def _set_linked(self, on: bool) -> None:
        self.settings.linked_cameras = bool(on)
        self.views.set_linked(on)

    def _set_grid(self, on: bool) -> None:
        self.settings.show_grid = bool(on)
        self.views.set_grid(on)

    def _set_trails(self, on: bool) -> None:
        self.settings.show_trails = bool(on)
        self.views.set_trails(on)

    def _set_colormap(self, name: str) -> None:
        self.settings.colormap = name
        self.views.set_colormap(name)
        self.inspect_panel.set_colormap(name)

    def save_settings(self) -> None:
        s = self.settings
        s.overlay = self.session.scene.overlay
        s.colour_mode = self.session.scene.colour_mode
        s.save(self.store)
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/state", self.saveState())
        if hasattr(self.store, "sync"):
            self.store.sync()

    def _restore_layout(self) -> None:
        geometry = self.store.value("window/geometry", None)
        state = self.store.value("window/state", None)
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            screen = QtGui.QGuiApplication.primaryScreen()
            avail = screen.availableGeometry() if screen is not None else QtCore.QRect(0, 0, 1500, 920)
            self.resize(min(1500, avail.width()), min(920, avail.height() - 40))
        if state is not None:
            self.restoreState(state)
        self.docks["Data"].raise_()

    def closeEvent(self, ev) -> None:  # noqa: N802
        self.workers.cancel_all()
        self.export_panel.cancel_video()
        self.save_settings()
        self.workers.wait(3000)
        super().closeEvent(ev)

    # -- messages -----------------------------------------------------------------------------------------
    def _message_box(self, title: str, message: str) -> None:
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, message, parent=self)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # window-modal but non-blocking: the event loop (and playback) keep running

    def report_error(self, title: str, message: str) -> None:
        log.warning("%s: %s", title, message)
        self.errors.append((title, message))
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        self._error_reporter(title, message)

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    def _update_status(self) -> None:
        clf = self.session.classifier
        n = sum(len(c) for c in self.session.collections)
        model = f"{getattr(clf, 'arch', 'model')} ({clf.skeleton.name})" if clf is not None else "no classifier"
        self.status_label.setText(f"{n} clips loaded · {model}")

    # -- opening data -------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(
            self, "Open motion files or datasets", self.settings.last_dir or str(Path.home()), OPEN_FILTER
        )
        if paths:
            self.settings.last_dir = str(Path(paths[0]).parent)
            self.open_paths(paths)

    def open_paths(self, paths, asf: str | None = None, show: bool = True, stats: str | None = None) -> None:
        """Read files in the background; each success is added to the Data panel (the first one shown).
        ``asf``: an AMC's skeleton; ``stats``: a SMART .npz's preprocess_core.npz (both asked for when missing)."""
        for i, path in enumerate(paths):
            self.loading += 1
            task = self.workers.start(api.open_dataset, str(path), asf, stats, name=f"open {Path(path).name}")
            task.succeeded.connect(lambda ds, p=str(path), first=(i == 0): self._on_opened(p, ds, show and first))
            task.failed.connect(lambda exc, p=str(path): self._on_open_failed(p, exc))
            task.finished.connect(self._loading_done)

    def _loading_done(self) -> None:
        self.loading -= 1

    def _on_opened(self, path: str, dataset, show: bool) -> None:
        self.session.add_collection(dataset)
        self.settings.add_recent(path)
        self._refresh_recent()
        self.show_status(f"opened {path}: {len(dataset)} clip{'s' if len(dataset) != 1 else ''}")
        if show and len(dataset):
            self.show_clip("A", dataset[0])

    def _on_open_failed(self, path: str, exc: BaseException) -> None:
        if isinstance(exc, MissingCompanionFileError) and Path(path).suffix.lower() == ".amc":
            asf, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, f"Choose the skeleton (.asf) of {Path(path).name}", str(Path(path).parent), "ASF (*.asf)"
            )
            if asf:
                self.open_paths([path], asf=asf)
                return
        if isinstance(exc, MissingCompanionFileError) and Path(path).suffix.lower() == ".npz":
            # The SMART code writes adClassTrain.npz into a results folder, away from its data's statistics.
            stats, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, f"Choose the normalisation statistics (preprocess_core.npz) of {Path(path).name}",
                str(Path(path).parent), "NumPy (*.npz)"
            )
            if stats:
                self.open_paths([path], stats=stats)
                return
        self.report_error(f"Cannot open {Path(path).name}",
                          _failure_text(exc, path) + "\n\nThe clips loaded before are kept.")

    def open_demo(self, demo: str | None = None) -> None:
        """Open a shipped demo (:data:`engine.assets.DEMOS`) with its ST-GCN, so predictions mean something."""
        self.load_demo_data(demo=demo)
        self.load_demo_classifier("stgcn", demo=demo)

    def load_demo_data(self, show: bool = True, demo: str | None = None) -> None:
        self.loading += 1
        task = self.workers.start(api.demo_dataset, demo, name="demo data")
        task.succeeded.connect(lambda ds: self._on_opened_demo(ds, show))
        task.failed.connect(lambda exc: self.report_error("Cannot load the demo data", str(exc)))
        task.finished.connect(self._loading_done)

    def _on_opened_demo(self, dataset, show: bool) -> None:
        self.session.add_collection(dataset)
        if show and len(dataset):
            self.show_clip("A", dataset[0])

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    def dragEnterEvent(self, ev) -> None:  # noqa: N802
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            ev.acceptProposedAction()
            self.open_paths(paths)

    def show_clip(self, slot: str, clip: Clip, caption: str | None = None) -> None:
        if caption is None:
            caption = "original" if slot == "A" else "compared"
        self.session.scene.set_clip(slot, clip, caption)

    # -- classifiers and predictions ----------------------------------------------------------------------
    def load_checkpoint_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Load a classifier checkpoint", self.settings.last_dir or str(Path.home()), CHECKPOINT_FILTER
        )
        if path:
            self.load_checkpoint(path)

    def load_checkpoint(self, path: str, defended: bool = False) -> None:
        """Load a checkpoint in the background; it replaces the current one only if it can read the shown
        clips (a checkpoint for another skeleton is refused with a message, and the old one kept)."""
        self._start_classifier_load(
            api.load_classifier, (str(path), self.settings.device), str(path), defended, Path(path).name
        )

    def load_demo_classifier(self, arch: str = "stgcn", demo: str | None = None) -> None:
        name = f"{demo or DEFAULT_DEMO} demo {arch}"
        self._start_classifier_load(
            api.demo_classifier, (arch, self.settings.device, demo), f"{name} checkpoint", False, name
        )

    def _start_classifier_load(self, loader, args, source: str, defended: bool, label: str) -> None:
        clips = [c for c in (self.session.scene.clip(s) for s in "AB") if c is not None]
        self.loading += 1
        task = self.workers.start(_load_checked, loader, args, clips, source, name=f"load {label}")
        if defended:
            task.succeeded.connect(lambda clf: self.session.set_defended(clf, source))
        else:
            task.succeeded.connect(lambda clf: self.session.set_classifier(clf, source))
        task.failed.connect(
            lambda exc: self.report_error(
                f"Cannot use {label}", f"{_failure_text(exc, source)}\n\nThe classifier loaded before is kept."
            )
        )
        task.finished.connect(self._loading_done)

    def load_defended_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Load a defended checkpoint", self.settings.last_dir or str(Path.home()), CHECKPOINT_FILTER
        )
        if path:
            self.load_checkpoint(path, defended=True)

    def set_device(self, device: str) -> None:
        try:
            for clf in (self.session.classifier, self.session.defended):
                if clf is not None:
                    clf.to(device)
        except (RuntimeError, AssertionError) as exc:
            self.report_error("Cannot use that device", str(exc))
            for clf in (self.session.classifier, self.session.defended):
                if clf is not None:
                    clf.to(self.settings.device)
            return
        self.settings.device = device
        if self.session.classifier is not None:
            self.session.classifier_changed.emit(self.session.classifier)

    def _on_clip_changed(self, slot: str) -> None:
        self._predict(slot)

    def _predict_all(self) -> None:
        for s in "AB":
            self._predict(s)

    def _predict(self, slot: str) -> None:
        clf, clip = self.session.classifier, self.session.scene.clip(slot)
        self._prediction_gen[slot] += 1
        if clf is None or clip is None or self.session.scene.probs(slot) is not None:
            return
        gen = self._prediction_gen[slot]
        task = self.workers.start(api.predict, clf, clip, name=f"predict {slot}")
        task.succeeded.connect(lambda p, s=slot, g=gen: self._on_predicted(s, g, clf, p))
        task.failed.connect(lambda exc, s=slot: self.show_status(f"the classifier cannot read clip {s}: {exc}"))

    def _on_predicted(self, slot: str, gen: int, clf, probs) -> None:
        if gen == self._prediction_gen[slot] and clf is self.session.classifier:
            self.session.scene.set_probs(slot, probs)

    # -- study --------------------------------------------------------------------------------------------
    def run_study(self) -> None:
        """Study → Run study…: choose a protocol and a stimulus file, then open the participant window."""
        protocol, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Study protocol", self.settings.last_dir or str(Path.home()), "Protocols (*.toml);;All files (*)"
        )
        if not protocol:
            return
        stimuli, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Stimulus file", str(Path(protocol).parent), "Stimuli (*.h5 *.hdf5);;All files (*)"
        )
        if stimuli:
            self.start_study(protocol, stimuli)

    def start_study(self, protocol: str, stimuli: str, fullscreen: bool = True):
        try:
            from skelviz.participant import launch_study
        except ImportError as exc:
            self.report_error("Studies are not available", f"This installation has no participant mode ({exc}).")
            return None
        try:
            self._study_window = launch_study(protocol, stimuli, fullscreen=fullscreen)
        except SkelvizError as exc:
            self.report_error("Cannot start the study", str(exc))
            return None
        return self._study_window

    # -- help ---------------------------------------------------------------------------------------------
    def _show_keys(self) -> None:
        QtWidgets.QMessageBox.information(
            self,
            "Keyboard shortcuts",
            "Space: play / pause\n← / →: previous / next frame\nHome / End: first / last frame\n"
            "O: overlay   L: link cameras   G: grid   T: trails\nR: reset view   1 / 2 / 3: front / side / top\n"
            "Mouse: drag to orbit, Ctrl+drag or middle-drag to pan, wheel to zoom; click a joint to select it",
        )

    def _about(self) -> None:
        QtWidgets.QMessageBox.about(
            self,
            "About skelviz",
            ABOUT_TEXT,
        )


ABOUT_TEXT = (
    "<p><b>skelviz</b>: adversarial robustness of skeleton-based action recognition. SMART and BASAR attacks, "
    "BEAT defence, 3D inspection and perceptual studies.</p>"
    "<p>The CMU demo (File → Open demo) is real motion capture from the CMU Graphics Lab Motion Capture "
    "Database: <i>The data used in this project was obtained from mocap.cs.cmu.edu. The database was created "
    "with funding from NSF EIA-0196217.</i> The synthetic demo is generated by skelviz (no person recorded).</p>"
)


def _failure_text(exc: BaseException, source: str) -> str:
    """What failed, naming the file: a project error names it already; anything else is prefixed with it."""
    text = str(exc) if isinstance(exc, SkelvizError) else f"{type(exc).__name__}: {exc}"
    return text if source in text else f"{source}: {text}"


def _load_checked(loader, args, clips: list[Clip], source: str = "the classifier"):
    """Load a classifier and check that it can read the clips on screen (runs in a worker).

    The loader refuses unreadable files and damaged weights (engine.models.checkpoint.load_classifier); the
    classifier must also give finite outputs, the same checks the commands make (engine.validation)."""
    from engine.validation import check_outputs

    clf = loader(*args)
    check_outputs(clf, source)
    for clip in clips:
        try:
            api.model_input(clf, clip)
        except SkelvizError as exc:
            raise CheckpointError(
                f"this classifier expects the {clf.skeleton.name!r} skeleton ({clf.skeleton.num_joints} joints), "
                f"but the shown clip {clip.title!r} uses {clip.skeleton.name!r} ({clip.skeleton.num_joints} "
                f"joints) and cannot be mapped onto it: {exc}"
            ) from None
    return clf
