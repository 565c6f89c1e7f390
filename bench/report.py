"""The results: one JSON document (latest.json and a dated copy) and a table."""

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (key, what it measures) in the order the table shows them.
LATENCIES = [
    ("webhook_ack", "webhook ack (all)"),
    ("webhook_ack_inbound", "  inbound message"),
    ("webhook_ack_status", "  status callback"),
    ("bot_turn", "bot turn (stored → handed over)"),
    ("handoff_to_offer", "handoff → offer on socket"),
    ("offer_to_agent_socket", "reservation → offer on socket"),
    ("queue_wait", "task waits for a free agent"),
    ("customer_to_agent_socket", "customer message → agent socket"),
    ("agent_reply_to_backend", "agent reply → backend"),
]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator or math.isnan(numerator):
        return None
    return round(numerator / denominator, 2)


def peak_rate(times: list[float]) -> int:
    """The most webhooks answered within one second of wall-clock time."""
    buckets: dict[int, int] = {}
    for moment in times:
        buckets[int(moment)] = buckets.get(int(moment), 0) + 1
    return max(buckets.values(), default=0)


def build(
    config: dict, baselines: dict, analysis: dict, scenario: dict, extra: dict
) -> dict[str, Any]:
    latency = analysis["samples"]
    rtt = baselines["channel_layer_round_trip"]
    bare_same = baselines["bare_same_server"]["rps"]
    bare_fastest = baselines["bare_fastest"]["rps"]
    saturation = baselines["webhook_saturation"]["rps"]
    dequeue = baselines["skip_locked_dequeue"]["per_second"]
    load = scenario["load_seconds"]
    webhooks = scenario["webhooks"]
    throughput = {
        "webhooks_per_s": round(webhooks / load, 1) if load else 0.0,
        "webhooks_peak_1s": scenario["webhooks_peak_1s"],
        "assignments_per_s": round(analysis["assignments"] / load, 2) if load else 0.0,
        "webhook_saturation_rps": saturation,
        "bare_view_same_server_rps": bare_same,
        "bare_view_fastest_rps": bare_fastest,
        "skip_locked_dequeue_per_s": dequeue,
    }
    ratios = {
        "webhook_throughput_vs_bare_fastest": ratio(saturation, bare_fastest),
        "webhook_throughput_vs_bare_same_server": ratio(saturation, bare_same),
        "customer_to_socket_p50_vs_channel_rtt_p50": ratio(
            latency["customer_to_agent_socket"]["p50"], rtt["p50"]
        ),
        "customer_to_socket_p99_vs_channel_rtt_p99": ratio(
            latency["customer_to_agent_socket"]["p99"], rtt["p99"]
        ),
        "handoff_to_offer_p99_vs_channel_rtt_p99": ratio(
            latency["handoff_to_offer"]["p99"], rtt["p99"]
        ),
        "offer_to_socket_p50_vs_channel_rtt_p50": ratio(
            latency["offer_to_agent_socket"]["p50"], rtt["p50"]
        ),
        "assignments_vs_skip_locked_dequeue": ratio(
            throughput["assignments_per_s"], dequeue
        ),
    }
    return {
        **extra,
        "configuration": config,
        "correctness": analysis["correctness"],
        "correctness_detail": analysis["correctness_detail"],
        "latency_ms": latency,
        "throughput": throughput,
        "ratios": ratios,
        "baselines": baselines,
        "targets": targets(latency, throughput, ratios, analysis),
        "scenario": scenario,
    }


def _p99(latency: dict, key: str) -> float | None:
    return latency.get(key, {}).get("p99")


def targets(
    latency: dict, throughput: dict, ratios: dict, analysis: dict
) -> list[dict]:
    rate = throughput["webhooks_per_s"]
    live = analysis["live_conversations_peak"]

    def under(value: float | None, limit: float) -> bool | None:
        return None if value is None else value < limit

    rows = [
        (
            "webhook ack p99 < 50 ms at 100 webhooks/s",
            f"p99 {_p99(latency, 'webhook_ack')} ms at {rate}/s (peak "
            f"{throughput['webhooks_peak_1s']}/s)",
            under(_p99(latency, "webhook_ack"), 50),
            "" if rate >= 100 else "load below 100/s",
        ),
        (
            "webhook throughput ≥ ½ bare view (fastest server)",
            f"{throughput['webhook_saturation_rps']} vs "
            f"{throughput['bare_view_fastest_rps']} req/s = "
            f"{ratios['webhook_throughput_vs_bare_fastest']}",
            _at_least(ratios["webhook_throughput_vs_bare_fastest"], 0.5),
            "",
        ),
        (
            "customer message → agent socket p99 < 150 ms, 200 live",
            f"p99 {_p99(latency, 'customer_to_agent_socket')} ms, {live} live at peak",
            under(_p99(latency, "customer_to_agent_socket"), 150),
            "" if live >= 200 else "fewer than 200 live",
        ),
        (
            "handoff → offer p99 < 250 ms",
            f"p99 {_p99(latency, 'handoff_to_offer')} ms",
            under(_p99(latency, "handoff_to_offer"), 250),
            "",
        ),
        (
            "routing decisions ≥ ½ raw SKIP LOCKED rate",
            f"{throughput['assignments_per_s']} assignments/s vs "
            f"{throughput['skip_locked_dequeue_per_s']} dequeues/s",
            None,
            "bound by this load's demand: see the routing benchmark",
        ),
        (
            "correctness counts all 0",
            ", ".join(f"{k} {v}" for k, v in analysis["correctness"].items()),
            not any(analysis["correctness"].values()),
            "",
        ),
    ]
    return [
        {"target": name, "measured": measured, "met": met, "note": note}
        for name, measured, met, note in rows
    ]


def _at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def write(results: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, default=str) + "\n"
    (out / "latest.json").write_text(text)
    dated = out / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    dated.write_text(text)
    return dated


def table(results: dict, say: Callable[[str], None] = print) -> None:
    config = results["configuration"]
    say("")
    say(
        f"Switchboard bench: {config['customers']} customers, {config['agents']} "
        f"agents ×{config['capacity']}, server {config['server']} "
        f"({config['server_shape']}), {results['scenario']['load_seconds']} s of load"
    )
    say("")
    say(f"{'latency (ms)':36} {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for key, label in LATENCIES:
        row = results["latency_ms"].get(key) or {"n": 0}
        cells = [_cell(row.get(name)) for name in ("p50", "p95", "p99", "max")]
        say(f"{label:36} {row['n']:>6} " + " ".join(f"{c:>8}" for c in cells))
    rtt = results["baselines"]["channel_layer_round_trip"]
    say(
        f"{'baseline: channel-layer round trip':36} {rtt['n']:>6} "
        + " ".join(f"{_cell(rtt.get(n)):>8}" for n in ("p50", "p95", "p99", "max"))
    )
    say("")
    say("throughput")
    for key, value in results["throughput"].items():
        say(f"  {key:34} {value}")
    say("")
    cores = results["scenario"].get("cores_used_during_load", {})
    say(f"cores used during the load (of {results['machine']['cpus']}): {cores}")
    per_conversation = results["scenario"].get("cpu_ms_per_finished_conversation")
    if per_conversation:
        say(f"CPU ms per finished conversation: {per_conversation}")
    if cores.get("other", 0) > 0.2:
        say(
            f"WARNING: processes that are not this run's took {cores['other']} cores "
            "during the load: every number above is skewed by them"
        )
    postgres = results["scenario"].get("postgres_during_load") or {}
    if postgres:
        say(
            "PostgreSQL during the load: mean active queries "
            f"{postgres['active_queries_mean']}, waiting on "
            f"{postgres['active_by_wait']}, per second {postgres['per_second']}"
        )
        say("  statements with the most time (calls, total ms, mean ms, rows):")
        for row in postgres.get("top_statements_by_time", [])[:6]:
            say(
                f"  {row['calls']:>7} {row['total_ms']:>9.0f} {row['mean_ms']:>7.2f} "
                f"{row['rows']:>8}  {row['sql'][:90]}"
            )
        say("")
    costs = results["scenario"].get("costs_per_step") or {}
    if costs:
        say("per-step costs, one conversation walked in one process (queries, ms)")
        for name, cost in costs.items():
            if name == "error":
                say(f"  failed: {cost.splitlines()[-1]}")
                continue
            say(f"  {name:44} {cost['queries']:>5} {cost['ms']:>8.1f}")
        say("")
    say("ratios")
    for key, value in results["ratios"].items():
        say(f"  {key:44} {value}")
    say("")
    say("targets")
    for row in results["targets"]:
        mark = {True: "MET ", False: "MISS", None: " -- "}[row["met"]]
        note = f"  ({row['note']})" if row["note"] else ""
        say(f"  [{mark}] {row['target']}: {row['measured']}{note}")
    say("")
    say("correctness: " + json.dumps(results["correctness"]))
    nonzero = {k: v for k, v in results["correctness_detail"].items() if v}
    if nonzero:
        say("  detail: " + json.dumps(nonzero))


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
