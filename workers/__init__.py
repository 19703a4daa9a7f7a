"""Queues by workload, each with its own job timeout (seconds).

Imports and syncs can run for an hour on large inputs; webhook deliveries must
be quick or be retried; ``default`` holds maintenance work.
"""

QUEUE_TIMEOUTS: dict[str, int] = {
    "imports": 3600,
    "exports": 3600,
    "sync": 3600,
    "webhooks": 60,
    "default": 600,
}

QUEUE_NAMES: tuple[str, ...] = tuple(QUEUE_TIMEOUTS)
