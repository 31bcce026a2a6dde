"""``streamup worker``: takes upscale jobs from a queue, runs each through ``upscale()`` (S3 in and out).

Rooms, bottom up: ``queue`` (what a job queue is: ``JobQueue``, ``Delivery``, ``Outcome``), ``jobs`` (a
message into a ``Job``), ``events`` (status events), ``failures`` (permanent or transient) and ``policy``
(what a failure does to its message), ``models`` (the model cache), ``health`` (/healthz, /readyz), ``task``
(one delivery in hand), ``hooks`` (the doors: job hooks, admission, busy hooks), ``runner`` (a delivery into
an outcome, on a job thread), ``consumer`` (every queue call, on one thread), ``core`` (the lifecycle),
``sqs`` (SQS as a ``JobQueue``: the only module here that speaks SQS), ``cli`` (the command line, which
composes them). Nothing here imports the fan-out, and nothing below the faces imports this package.
"""
