"""A runner turns one delivery into one ``Outcome`` on a job thread; it never touches the queue.

The walk of a delivery: parse the message (``jobs``), ``admit.check`` its words (nothing looked at or
fetched yet), look whether its output exists (a duplicate of a finished job ends here, before any input is
read), ``admit.weigh`` its source (a header read against the tier's limits), offer it to the job hooks (the
fan-out) before its model is built, then build or reuse the model (``models``) and run ``upscale()`` through
``observe.run_observed``. Failures become outcomes through the ``Policy``; an interrupt (the worker drains)
becomes ``RELEASE``.

At-least-once without harm: outputs are published exclusively (``upscale(exclusive=True)``) and tagged with
the job id, so a redelivered finished job is recognised before any work (SUCCEEDED is sent again), and of two
deliveries running at once only one can publish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from streamup import storage
from streamup.errors import Cancelled, InputError, OutputError, OutputExists
from streamup.observe import JobRef, Observer, run_observed
from streamup.worker import events, jobs
from streamup.worker.failures import Failure
from streamup.worker.hooks import Admit, JobContext, JobHook
from streamup.worker.models import Models
from streamup.worker.policy import Policy, observed_status
from streamup.worker.queue import DELETE, RELEASE, Outcome
from streamup.worker.task import Task

if TYPE_CHECKING:
    from streamup.config import Config
    from streamup.engine.base import FrameUpscaler
    from streamup.options import UpscaleOptions

log = logging.getLogger("streamup")


class Runner:
    """Runs deliveries of one queue: jobs read against ``bucket``, models from ``models``."""

    def __init__(self, bucket: str, config: Config, models: Models, policy: Policy,
                 stopping: Callable[[], bool], *, observers: Sequence[Observer] = (),
                 hooks: Sequence[JobHook] = (), admit: Admit | None = None) -> None:
        self.bucket, self.config, self.models = bucket, config, models
        self.policy, self.stopping = policy, stopping
        self.observers, self.hooks, self.admit = tuple(observers), tuple(hooks), admit

    def run(self, task: Task) -> Outcome:
        """The outcome of ``task``; never raises (a bug here fails the delivery transiently, so the message
        comes back rather than being lost)."""
        try:
            return self._run(task)
        except BaseException as e:
            log.exception("internal error on message %s", task.delivery.message_id)
            return self._failure(task, e)

    def _run(self, task: Task) -> Outcome:
        if self.stopping():  # taken just before a drain began: give it back untouched
            return Outcome(RELEASE)
        try:
            job = task.job = jobs.parse(task.delivery.body, self.bucket, self.config)
            if self.admit is not None:
                self.admit.check(job)
            options = job.options(self.models.weights_dirs, self.config)
            existing = _stat_output(job.destination)
        except Exception as e:
            return self._failure(task, e)
        if existing is not None:
            return self._existing(job, existing.metadata)
        if self.admit is not None:
            try:
                self.admit.weigh(job)
            except Exception as e:
                return self._failure(task, e)
        if (handled := self._offer(task, job, options)) is not None:
            return handled
        try:
            upscaler = self.models.get(options)
        except Exception as e:
            return self._failure(task, e)
        return self._upscale(task, job, options, upscaler)

    def _offer(self, task: Task, job: jobs.Job, options: UpscaleOptions) -> Outcome | None:
        """The first hook that takes the job decides its outcome; None: no hook took it."""
        if not self.hooks:
            return None
        context = JobContext(task.delivery.identity, options, lambda: self.models.get(options),
                             task.cancel, self.observers, self.config)
        for hook in self.hooks:
            try:
                handled = hook(job, context)
            except Cancelled:
                return self._released(job)
            except Exception as e:
                return self._failure(task, e)
            if handled is not None:
                return Outcome(DELETE, handled.event, sends=handled.sends)
        return None

    def _upscale(self, task: Task, job: jobs.Job, options: UpscaleOptions,
                 upscaler: FrameUpscaler) -> Outcome:
        task.started()
        try:
            result = run_observed(
                JobRef(job.id, job.tier, job.device), self.observers, job.source, job.destination, options,
                progress=task.record, classify=observed_status, cancel=task.cancel, upscaler=upscaler,
                metadata={"job-id": job.id, "device-used": upscaler.device}, exclusive=True)
        except Cancelled:
            return self._released(job)
        except OutputExists as e:  # another delivery published first
            return self._existing(job, e.metadata)
        except Exception as e:
            return self._failure(task, e)
        fields = {"event": "job", "job": job.id, "status": "succeeded", "frames": result.frames,
                  "seconds": round(result.seconds, 3), "device": result.device,
                  "attempt": task.delivery.receive_count}
        log.info("job %s succeeded: %s, %d frames in %.1f s on %s", job.id, job.destination, result.frames,
                 result.seconds, result.device, extra={"fields": fields})
        return Outcome(DELETE, events.succeeded(job.id, job.destination, result))

    def _existing(self, job: jobs.Job, metadata: Mapping[str, str]) -> Outcome:
        """The output is there already: this job's (a duplicate: report success again) or another's."""
        owner = metadata.get("job-id")
        if owner == job.id:
            log.info("job %s already done (%s exists): no work, SUCCEEDED sent again",
                     job.id, job.destination,
                     extra={"fields": {"event": "job", "job": job.id, "status": "duplicate"}})
            return Outcome(DELETE, events.already_done(job.id, job.destination, metadata.get("device-used")))
        failure = Failure("OUTPUT_EXISTS", f"{job.destination} already exists and belongs to "
                          f"{'job ' + owner if owner else 'no job'}; not replaced", True)
        return self.policy.fail(job.id, failure, 0)

    def _released(self, job: jobs.Job) -> Outcome:
        log.info("job %s cancelled; message released", job.id,
                 extra={"fields": {"event": "job", "job": job.id, "status": "cancelled"}})
        return Outcome(RELEASE)

    def _failure(self, task: Task, error: BaseException) -> Outcome:
        job_id = getattr(error, "job_id", None) or task.job_id()
        return self.policy.failure(task.delivery, error, job_id, task.step())


def _stat_output(uri: str) -> storage.ObjectInfo | None:
    """The existing output, if any. Storage calls a failed look an input error; here it is the output's."""
    try:
        return storage.stat(uri)
    except InputError as e:
        raise OutputError(f"cannot check output {uri}: {e}") from e
