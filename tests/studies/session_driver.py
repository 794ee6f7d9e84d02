"""A headless participant for the crash test: runs a session, answering every trial after a short delay.

    python session_driver.py PROTOCOL STIMULI (--out DIR | --resume SESSION.h5) [--delay S]

Prints ``SESSION <path>`` once and ``DONE <trial index>`` after each response is on disk, so that the test can
kill the process with SIGKILL after a known number of completed trials.
"""

from __future__ import annotations

import argparse
import sys
import time

from studies.protocol import load_protocol
from studies.session import State, StudySession
from studies.stimuli import open_stimuli


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("protocol")
    ap.add_argument("stimuli")
    ap.add_argument("--out")
    ap.add_argument("--resume")
    ap.add_argument("--participant")
    ap.add_argument("--delay", type=float, default=0.05)
    args = ap.parse_args()
    protocol = load_protocol(args.protocol)
    stimuli = open_stimuli(args.stimuli, protocol)
    if args.resume:
        session = StudySession.resume(protocol, stimuli, args.resume)
    else:
        session = StudySession.start(protocol, stimuli, args.out, args.participant)
        session.accept_consent()
    print("SESSION", session.file.path, flush=True)
    responses = protocol.responses
    while session.state not in (State.END, State.ABORTED):
        if session.state is State.TRIAL:
            trial = session.current
            session.presentation_started()
            session.stimulus_onset()
            time.sleep(args.delay)  # the participant watches and decides
            session.respond(responses[trial.index % len(responses)])
            print("DONE", trial.index, flush=True)
        elif session.state is State.CONSENT:  # resumed from a session killed before consent was given
            session.accept_consent()
        else:
            session.advance()
    print("END", session.state.value, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
