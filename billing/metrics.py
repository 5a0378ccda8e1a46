"""Every Prometheus metric kassa exports, defined here so an operator finds them all in one
file, and the text ``/metrics`` answers with (:func:`exposition`).

Counters and histograms are ``prometheus_client``'s.  With ``PROMETHEUS_MULTIPROC_DIR`` set
(to an empty directory, the same for every kassa process on the machine, cleared when they
all start afresh), each process writes its figures there and any process's ``/metrics``
adds up all of them — so several ``kassa serve`` processes, and ``kassa worker`` processes
beside them, report one set of totals.  Without it, each process reports its own.

The job queue's gauges are not kept in any process: they are read from the jobs table when
``/metrics`` is scraped (:func:`billing.jobs.queue_state`), so they are the same whichever
process answers, and they are never summed over processes.

Labels hold only bounded values — a route's template, never a raw path or an id; a GraphQL
root field that exists in the schema; an error code kassa itself defines — so the number of
series stays small whatever clients send.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from billing.jobs import QueueState

#: What ``/metrics`` answers with (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A counter is one series, not two: its start time (``*_created``) tells an operator nothing
# that ``rate()`` and the process's own restarts do not.
disable_created_metrics()  # type: ignore[no-untyped-call]

# --- HTTP -----------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "kassa_http_requests",
    "HTTP requests served, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "kassa_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
)

# --- GraphQL --------------------------------------------------------------------------------

GRAPHQL_OPERATIONS = Counter(
    "kassa_graphql_operations",
    "GraphQL operations, by operation type and root field (one count per root field).",
    ["operation", "field"],
)
GRAPHQL_ERRORS = Counter(
    "kassa_graphql_errors",
    "Top-level GraphQL errors (authorisation, bad requests, bugs), by extensions.code.",
    ["code"],
)
GRAPHQL_COMPILED_READS = Counter(
    "kassa_graphql_compiled_reads",
    "GraphQL operations by how they ran: compiled (schema.compiled), prepared (compiled, "
    "past Strawberry's view: schema.prepared), json (prepared, its JSON built by "
    "PostgreSQL: schema.json_reads), fallback (compiled, but Strawberry answered "
    "this request: an error to report), unsupported (Strawberry's executor: mutations, and "
    "queries outside the compiled subset).",
    ["outcome"],
)
GRAPHQL_USER_ERRORS = Counter(
    "kassa_graphql_user_errors",
    "Expected failures returned in mutation payloads (errors: [UserError!]!), by code.",
    ["code"],
)

# --- money ----------------------------------------------------------------------------------

PAYMENTS = Counter(
    "kassa_payments",
    "Payments reaching an outcome, by channel (CASH, WIRE, CHEQUE, CARD) and outcome "
    "(completed, failed, unknown: a card charge whose answer is awaited).",
    ["channel", "outcome"],
)
CHARGE_ATTEMPTS = Counter(
    "kassa_card_charge_attempts",
    "Card charges sent to a processor (collection, invoice payments, top-ups, the janitor "
    "sending an intent again), by processor and answer (succeeded, declined, no_answer).",
    ["processor", "outcome"],
)

# --- jobs (bill runs, collection runs, …) -----------------------------------------------------

JOB_RUNS = Counter(
    "kassa_job_runs",
    "Jobs run, by kind (bill_run, collection_run, …) and outcome (done, failed).",
    ["kind", "outcome"],
)
JOB_DURATION = Histogram(
    "kassa_job_duration_seconds",
    "How long a job ran, by kind (bill_run and collection_run are the long ones).",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, float("inf")),
)


class _Snapshot(Collector):
    """Metric families computed just now, for one exposition."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def _queue_families(queue: QueueState) -> list[Metric]:
    return [
        GaugeMetricFamily("kassa_jobs_pending", "Jobs waiting to run.", value=queue.pending),
        GaugeMetricFamily(
            "kassa_jobs_due",
            "Pending jobs whose due time has passed (the workers' backlog).",
            value=queue.due,
        ),
        GaugeMetricFamily(
            "kassa_jobs_failed",
            "Jobs that failed every attempt and wait for a person.",
            value=queue.failed,
        ),
        GaugeMetricFamily(
            "kassa_jobs_oldest_due_age_seconds",
            "How long the longest-waiting due job has been due (0 when none is).",
            value=queue.oldest_due_age_seconds,
        ),
    ]


def _process_registry() -> CollectorRegistry:
    """Every process's counters in multiprocess mode, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition(queue: QueueState) -> bytes:
    """The ``/metrics`` body: the counters and histograms, then the job queue as of now."""
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(_queue_families(queue)))
    return generate_latest(_process_registry()) + generate_latest(snapshot)
