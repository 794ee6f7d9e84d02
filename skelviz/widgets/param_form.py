"""A form generated from :class:`engine.api.ParamSpec` lists (attack and defence hyper-parameters)."""

from __future__ import annotations

from PySide6 import QtWidgets

from engine.api import ParamSpec


def _label(name: str) -> str:
    return name.replace("_", " ")


class ParamForm(QtWidgets.QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._layout = QtWidgets.QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setFieldGrowthPolicy(QtWidgets.QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._specs: list[ParamSpec] = []
        self._editors: dict[str, QtWidgets.QWidget] = {}

    def set_specs(self, specs: list[ParamSpec]) -> None:
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self._specs, self._editors = list(specs), {}
        for spec in self._specs:
            editor = self._make_editor(spec)
            editor.setObjectName(f"param_{spec.name}")
            tip = spec.doc or f"{spec.name} (default {spec.default!r})"
            editor.setToolTip(tip)
            label = QtWidgets.QLabel(_label(spec.name), self)
            label.setToolTip(tip)
            self._layout.addRow(label, editor)
            self._editors[spec.name] = editor

    def _make_editor(self, spec: ParamSpec) -> QtWidgets.QWidget:
        if spec.choices:
            box = QtWidgets.QComboBox(self)
            for c in spec.choices:
                box.addItem(str(c), c)
            box.setCurrentIndex(max(0, box.findData(spec.default)))
            return box
        if spec.kind is bool:
            box = QtWidgets.QCheckBox(self)
            box.setChecked(bool(spec.default))
            return box
        if spec.kind is int:
            box = QtWidgets.QSpinBox(self)
            box.setRange(-1, 10_000_000)
            box.setValue(int(spec.default) if spec.default is not None else -1)
            if spec.default is None:
                box.setSpecialValueText("none")
            return box
        # floats, sequences and strings: free text, parsed on read (keeps 1e-4 and 0.6,0.3,0.1 readable)
        edit = QtWidgets.QLineEdit(self)
        if spec.default is None:
            edit.setPlaceholderText("none")
        elif spec.kind is list:
            edit.setText(", ".join(f"{v:g}" for v in spec.default))
        elif spec.kind is float:
            edit.setText(f"{spec.default:g}")
        else:
            edit.setText(str(spec.default))
        return edit

    def editor(self, name: str) -> QtWidgets.QWidget:
        return self._editors[name]

    def set_value(self, name: str, value) -> None:
        ed = self._editors[name]
        if isinstance(ed, QtWidgets.QComboBox):
            ed.setCurrentIndex(max(0, ed.findData(value)))
        elif isinstance(ed, QtWidgets.QCheckBox):
            ed.setChecked(bool(value))
        elif isinstance(ed, QtWidgets.QSpinBox):
            ed.setValue(int(value))
        elif isinstance(value, (list, tuple)):
            ed.setText(", ".join(f"{v:g}" for v in value))
        else:
            ed.setText(f"{value:g}" if isinstance(value, float) else str(value))

    def values(self) -> dict:
        """The entered values, typed like the defaults. Raises ValueError naming a field that does not parse."""
        out = {}
        for spec in self._specs:
            ed = self._editors[spec.name]
            if isinstance(ed, QtWidgets.QComboBox):
                out[spec.name] = ed.currentData()
            elif isinstance(ed, QtWidgets.QCheckBox):
                out[spec.name] = ed.isChecked()
            elif isinstance(ed, QtWidgets.QSpinBox):
                v = ed.value()
                out[spec.name] = None if (spec.default is None and v == -1) else v
            else:
                text = ed.text().strip()
                if text == "" and spec.default is None:
                    out[spec.name] = None
                    continue
                try:
                    if spec.kind is float:
                        out[spec.name] = float(text)
                    elif spec.kind is list:
                        out[spec.name] = type(spec.default)(float(v) for v in text.replace(";", ",").split(","))
                    elif spec.kind is int:
                        out[spec.name] = int(text)
                    else:
                        out[spec.name] = text
                except ValueError:
                    raise ValueError(f"{_label(spec.name)}: {text!r} is not a valid {spec.kind.__name__}") from None
        return out
