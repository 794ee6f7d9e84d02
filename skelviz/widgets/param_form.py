"""A form generated from :class:`engine.api.ParamSpec` lists: the typed hyper-parameters of an attack or a defence
(:mod:`engine.params`). Choices become combo boxes, whole numbers spin boxes within their range, other numbers
text fields; labels carry the unit, tooltips the one-line help, the range and the default."""

from __future__ import annotations

from PySide6 import QtWidgets

from engine.api import ParamSpec


def _label(name: str) -> str:
    return name.replace("_", " ")


def _tooltip(spec: ParamSpec) -> str:
    parts = [spec.doc or spec.name]
    if spec.minimum is not None or spec.maximum is not None:
        lo = "" if spec.minimum is None else f"{spec.minimum:g}"
        hi = "" if spec.maximum is None else f"{spec.maximum:g}"
        parts.append(f"range [{lo}, {hi}]{' ' + spec.unit if spec.unit else ''}")
    parts.append(f"default {spec.default!r}" + (" (empty: none)" if spec.optional else ""))
    return "\n".join(parts)


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
            tip = _tooltip(spec)
            editor.setToolTip(tip)
            label = QtWidgets.QLabel(_label(spec.name) + (f" ({spec.unit})" if spec.unit else ""), self)
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
            lo = int(spec.minimum) if spec.minimum is not None else -1_000_000
            hi = int(spec.maximum) if spec.maximum is not None else 10_000_000
            if spec.optional:  # one step below the range stands for "none"
                lo -= 1
                box.setSpecialValueText("none")
            box.setRange(lo, hi)
            box.setValue(int(spec.default) if spec.default is not None else lo)
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

    def names(self) -> list[str]:
        return [s.name for s in self._specs]

    def set_value(self, name: str, value) -> None:
        ed = self._editors[name]
        if isinstance(ed, QtWidgets.QComboBox):
            ed.setCurrentIndex(max(0, ed.findData(value)))
        elif isinstance(ed, QtWidgets.QCheckBox):
            ed.setChecked(bool(value))
        elif isinstance(ed, QtWidgets.QSpinBox):
            ed.setValue(ed.minimum() if value is None else int(value))
        elif value is None:
            ed.setText("")
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
                out[spec.name] = None if (spec.optional and v == ed.minimum()) else v
            else:
                text = ed.text().strip()
                if text == "" and spec.optional:
                    out[spec.name] = None
                    continue
                try:
                    if spec.kind is float:
                        out[spec.name] = float(text)
                    elif spec.kind is list:
                        out[spec.name] = tuple(float(v) for v in text.replace(";", ",").split(",") if v.strip())
                    elif spec.kind is int:
                        out[spec.name] = int(text)
                    else:
                        out[spec.name] = text
                except ValueError:
                    raise ValueError(f"{_label(spec.name)}: {text!r} is not a valid {spec.kind.__name__}") from None
        return out
