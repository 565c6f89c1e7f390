"""What the simulated clients saw, kept for the analysis after the run.

Latencies that one client can time alone go straight into `samples` (seconds).
Those that end in the database (a reply handed to the backend) or start there (a
reservation made) keep their client-side half here, with wall-clock times, to be
joined with the database's timestamps: the harness and the stack share one clock.
"""

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Webhook:
    """An inbound message we posted (once, or more when Twilio 'retried')."""

    sid: str
    customer: str
    body: str
    statuses: list[int] = field(default_factory=list)


@dataclass
class Reply:
    """An agent's reply, posted from the console."""

    agent: str
    conversation: int
    posted_at: float
    ok: bool = False


@dataclass
class Pending:
    """A customer's message the holding agent has not been shown yet."""

    token: str
    sent_at: float


class Record:
    def __init__(self) -> None:
        self.samples: defaultdict[str, list[float]] = defaultdict(list)
        self.counts: Counter[str] = Counter()
        self.inbound: dict[str, Webhook] = {}
        # message id → [(status posted, HTTP status answered)]
        self.callbacks: defaultdict[int, list[tuple[str, int]]] = defaultdict(list)
        self.replies: dict[str, Reply] = {}
        # reservation id → when it first showed on any agent's socket
        self.offers_seen: dict[int, float] = {}
        # conversation id → agents whose accept succeeded
        self.accepted: defaultdict[int, set[str]] = defaultdict(set)
        self.pending: dict[str, Pending] = {}
        # wall-clock marks: load started, last customer done, ...
        self.marks: dict[str, float] = {}
        self.webhook_times: list[float] = []

    def mark(self, name: str) -> None:
        self.marks[name] = time.time()

    def sample(self, name: str, seconds: float) -> None:
        self.samples[name].append(seconds)

    def webhook_acked(self, kind: str, seconds: float, status: int) -> None:
        self.sample(f"webhook_ack_{kind}", seconds)
        self.sample("webhook_ack", seconds)
        self.counts[f"webhooks_{kind}"] += 1
        if status != 200:
            self.counts[f"webhooks_{kind}_http_{status}"] += 1
        self.webhook_times.append(time.time())
