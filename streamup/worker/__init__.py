"""``streamup worker``: takes upscale jobs from an SQS queue, runs each through ``upscale()`` (S3 in and out).

``core.Worker`` is the engine room (consumer thread + job threads), ``jobs`` reads a message into a ``Job``,
``events`` builds status events, ``failures`` sorts errors into permanent and transient, ``sqs`` wraps the
queue calls, ``cli`` is the command line. Nothing here is imported by the pipeline, the engine or storage.
"""
