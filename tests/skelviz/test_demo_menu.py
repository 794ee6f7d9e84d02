"""The app opens on the real CMU demo with its ST-GCN; File → Open demo switches to the synthetic one (with its own
classifier, so predictions keep meaning something); the About box carries the CMU acknowledgment."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from skelviz.model.settings import MemoryStore  # noqa: E402

pytestmark = [pytest.mark.gui, pytest.mark.gl]


def test_real_demo_first_and_the_synthetic_one_from_the_menu(qtbot, errors):
    from engine.assets import DEMOS
    from skelviz.app import create_window
    from skelviz.widgets.main_window import ABOUT_TEXT

    w = create_window(store=MemoryStore(), error_reporter=errors)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.loading == 0 and w.session.classifier is not None, timeout=30000)
    assert [c.name for c in w.session.collections] == ["cmu demo"]
    assert "walking" in w.session.classifier.class_names
    assert w.session.scene.clip("A").provenance.details.get("cmu8_clip")
    menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&File")
    demo_menu = next(a.menu() for a in menu.actions() if a.menu() is not None and "demo" in a.text())
    titles = [a.text() for a in demo_menu.actions()]
    assert titles == [d.title for d in DEMOS.values()]
    demo_menu.actions()[titles.index(DEMOS["synthetic"].title)].trigger()
    qtbot.waitUntil(lambda: w.loading == 0 and "bow" in w.session.classifier.class_names, timeout=30000)
    assert not errors, errors
    assert [c.name for c in w.session.collections] == ["cmu demo", "synthetic demo"]
    assert w.session.scene.clip("A").provenance.details.get("generator")
    assert "mocap.cs.cmu.edu" in ABOUT_TEXT and "NSF EIA-0196217" in ABOUT_TEXT
