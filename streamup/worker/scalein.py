"""Scale-in never picks a busy worker: the worker protects its own EC2 instance while it holds a job.

Target tracking on the queue backlog scales a group in by terminating *some* instance, busy or idle; the
termination lifecycle hook then only buys the drain time, and a long job is cut and redone. Auto Scaling's
instance protection is the usual answer for queue workers: an instance protected from scale-in is never
chosen, so the worker sets protection on itself when it takes its first job and lifts it when it holds
none (``SetInstanceProtection``), and scale-in only ever takes idle instances. This module is that
transport (boto through ``streamup.storage.aws``, like the S3 and SQS transports): ``ScaleInProtection`` is a
busy hook, ``hook(running)``, called on the worker's consumer thread whenever its number of jobs in hand
changes. The call only records the number and returns; the API calls happen on this hook's own thread.

- Protect at once: a busy instance left unprotected is the danger, so going busy is applied immediately.
- Lift after ``lift_after`` idle seconds: a worker that finishes one job and takes the next moments later
  makes no API calls at all, and a burst of changes becomes at most one call each way. The Auto Scaling
  API's request rate is shared by the whole account, and every worker of the fleet would flap per job.
- An API error is logged and retried every ``retry_after`` seconds, never raised: the worker keeps working
  (unprotected, as it would be without this module) and says so in its log.
- The first state applied is "idle", so a worker restarted after a crash lifts the protection its
  predecessor left, and ``close()`` lifts it on the way out.

Configured by ``STREAMUP_SCALE_IN_PROTECTION=1`` with the group (``STREAMUP_ASG_NAME``) and this instance's
id (``STREAMUP_INSTANCE_ID``); deploy/aws/bootstrap.sh writes both at boot (the worker never calls the
instance metadata service itself). The role needs ``autoscaling:SetInstanceProtection`` on the group.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from streamup import config
from streamup.config import Config
from streamup.errors import UsageError
from streamup.storage import aws

log = logging.getLogger("streamup")

#: Idle seconds before protection is lifted: longer than the gap between one job's end and the next
#: message's arrival on a queue with a backlog (one receive, well under a second on SQS; the worker's long
#: poll returns as soon as a message is there), short against target tracking's scale-in, which waits for
#: several minutes of low backlog before it acts.
LIFT_AFTER_S = 10.0
#: Seconds between attempts after an API error (throttling, a network blip, a missing permission).
RETRY_AFTER_S = 30.0


class ScaleInProtection:
    """The busy hook; ``client`` is an Auto Scaling client (``from_env`` builds one)."""

    def __init__(self, client: Any, group: str, instance_id: str, *, lift_after: float = LIFT_AFTER_S,
                 retry_after: float = RETRY_AFTER_S) -> None:
        self._client = client
        self.group = group
        self.instance_id = instance_id
        self._lift_after = lift_after
        self._retry_after = retry_after
        self._changed = threading.Condition()
        self._running = 0
        self._idle_since = time.monotonic() - lift_after  # idle "long enough": the first state applies now
        self._applied: bool | None = None  # unknown until the first call succeeds
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="scale-in-protection", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, cfg: Config, *, lift_after: float = LIFT_AFTER_S) -> ScaleInProtection | None:
        """The hook the configuration asks for (``STREAMUP_SCALE_IN_PROTECTION=1``), else None."""
        if not cfg.scale_in_protection:
            return None
        if not cfg.asg_name or not cfg.instance_id:
            raise UsageError(f"{config.SCALE_IN_PROTECTION}=1 needs {config.ASG_NAME} and "
                             f"{config.INSTANCE_ID} (deploy/aws/bootstrap.sh sets them at boot)")
        return cls(aws.make_client("autoscaling"), cfg.asg_name, cfg.instance_id, lift_after=lift_after)

    def __call__(self, running: int) -> None:
        """The worker now holds ``running`` jobs. Returns at once."""
        with self._changed:
            if running == 0 and self._running > 0:
                self._idle_since = time.monotonic()
            self._running = running
            self._changed.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Lift the protection now (one attempt) and stop the thread; waits at most ``timeout`` seconds."""
        with self._changed:
            self._running = 0
            self._closing = True
            self._changed.notify()
        self._thread.join(timeout)

    def _loop(self) -> None:
        with self._changed:
            while True:
                wanted = self._running > 0
                if wanted == self._applied:
                    if self._closing:
                        return
                    self._changed.wait()
                    continue
                lift_at = self._idle_since + self._lift_after
                due = 0.0 if wanted or self._closing else lift_at - time.monotonic()
                if due > 0:
                    self._changed.wait(due)
                    continue
                self._changed.release()
                try:
                    applied = self._apply(wanted)
                finally:
                    self._changed.acquire()
                if not applied:
                    if self._closing:
                        return
                    self._changed.wait(self._retry_after)

    def _apply(self, protect: bool) -> bool:
        try:
            self._client.set_instance_protection(
                InstanceIds=[self.instance_id], AutoScalingGroupName=self.group, ProtectedFromScaleIn=protect)
        except Exception as e:  # botocore also raises beyond aws.ERRORS (ResponseParserError: garbled answer)
            reason = " ".join(aws.describe(e).split())[:300]  # one log line
            log.warning("cannot %s scale-in protection of %s in %s: %s", "set" if protect else "lift",
                        self.instance_id, self.group, reason,
                        extra={"fields": {"event": "scale-in-protection", "protected": self._applied,
                                          "error": reason}})
            return False
        self._applied = protect
        log.info("scale-in protection %s for %s in %s", "on" if protect else "off", self.instance_id,
                 self.group, extra={"fields": {"event": "scale-in-protection", "protected": protect}})
        return True
