"""``streamup worker`` composed as ``streamup.cli`` composes it, with test doubles in the seams it offers
(``streamup.worker.hooks``): run as ``python -m tests.worker.composed [worker flags]``, a real process.

- ``admit``: ``RefuseNamed`` refuses every job whose id starts with ``refuse-`` (an ``InvalidJob``
  subclass, as an admission rule raises) and logs every job it is asked about.
- busy hooks: ``BusyLog`` logs each count of deliveries in hand it hears.

The tests read both from the worker's JSON log, like everything else they check.
"""

from __future__ import annotations

import argparse
import logging
import sys

from streamup.progress import configure_logging
from streamup.worker import cli as worker_cli
from streamup.worker.jobs import InvalidJob, Job

log = logging.getLogger("streamup")


class Refused(InvalidJob):
    """What an admission rule raises: the job is refused for good."""


class RefuseNamed:
    def check(self, job: Job) -> None:
        log.info("admission asked about %s", job.id, extra={"fields": {"event": "admit", "job": job.id}})
        if job.id.startswith("refuse-"):
            raise Refused(f"job {job.id} refused by the test's admission rule")

    def weigh(self, job: Job) -> None:
        log.info("admission weighed %s", job.id, extra={"fields": {"event": "weigh", "job": job.id}})


class BusyLog:
    def __call__(self, running: int) -> None:
        log.info("busy: %d", running, extra={"fields": {"event": "busy", "running": running}})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="composed")
    worker_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["worker", *argv])
    configure_logging(args.log_format, sys.stderr)
    return worker_cli.run(args, admit=RefuseNamed(), busy_hooks=[BusyLog()])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
