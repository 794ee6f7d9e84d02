"""Participant mode: runs a perceptual study full screen (see :mod:`skelviz.participant.window`).

The study logic lives in :mod:`studies` (Qt-free); this package renders it. :func:`launch_study` is what the
command line (``skelviz study run``) and the app's Study menu call.
"""

from __future__ import annotations

from pathlib import Path


def default_sessions_dir(stimuli_path: str | Path) -> Path:
    """Where session files go unless told: a ``sessions`` folder beside the stimulus file."""
    return Path(stimuli_path).resolve().parent / "sessions"


def launch_study(
    protocol_path: str | Path,
    stimuli_path: str | Path,
    participant: str | None = None,
    parent=None,
    *,
    out_dir: str | Path | None = None,
    resume: str | Path | None = None,
    fullscreen: bool = True,
):
    """Validate the protocol and the stimulus file, open (or resume) a session and show its window.

    Every problem with the files raises :class:`~engine.errors.StudyError` before a window opens or a session
    file is written. Returns the :class:`~skelviz.participant.window.ParticipantWindow` (already shown); its
    ``finished`` signal carries "end" or "aborted".
    """
    from studies.protocol import load_protocol
    from studies.session import StudySession
    from studies.stimuli import open_stimuli

    protocol = load_protocol(protocol_path)
    stimuli = open_stimuli(stimuli_path, protocol)
    if resume is not None:
        session = StudySession.resume(protocol, stimuli, resume)
    else:
        session = StudySession.start(protocol, stimuli, out_dir or default_sessions_dir(stimuli_path), participant)

    from skelviz.participant.window import ParticipantWindow

    window = ParticipantWindow(session, parent, fullscreen=fullscreen)
    if not fullscreen:
        window.resize(1280, 800)
        window.show()
    return window


__all__ = ["launch_study", "default_sessions_dir"]
