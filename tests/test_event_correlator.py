"""The event recorder's correlator against a real API server: combining similar events and the spam filter."""

from __future__ import annotations

import asyncio

from kybernetes.client.events import AGGREGATE_MAX_EVENTS, SPAM_BURST, EventRecorder
from kybernetes.client.rest import RESTClient


def configmap(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}


async def _emit_all(cluster, events: list[tuple[dict, str, str, str]]) -> list:
    client = RESTClient.from_kubeconfig(cluster.kubeconfig)
    try:
        recorder = EventRecorder(client, "test-correlator")
        objs = {}
        out = []
        for obj, type_, reason, message in events:
            name = obj["metadata"]["name"]
            if name not in objs:
                objs[name] = await client.create("", "v1", "configmaps", obj, "default")
                objs[name].update(apiVersion="v1", kind="ConfigMap")
            out.append(await recorder.emit(objs[name], type_, reason, message))
        return out
    finally:
        await client.close()


def _events_about(cluster, name: str) -> list[dict]:
    code, body = cluster.request("GET", "/api/v1/namespaces/default/events")
    assert code == 200
    return [e for e in body["items"] if e["involvedObject"]["name"] == name]


def test_distinct_messages_of_one_reason_are_combined_from_the_tenth_on(cluster):
    total = AGGREGATE_MAX_EVENTS + 3
    asyncio.run(_emit_all(cluster, [(configmap("agg"), "Normal", "Created", f"created part {i}")
                                    for i in range(total)]))
    events = _events_about(cluster, "agg")
    single = [e for e in events if not e["message"].startswith("(combined from similar events): ")]
    combined = [e for e in events if e["message"].startswith("(combined from similar events): ")]
    assert len(single) == AGGREGATE_MAX_EVENTS - 1
    assert {e["message"] for e in single} == {f"created part {i}" for i in range(AGGREGATE_MAX_EVENTS - 1)}
    assert len(combined) == 1
    assert combined[0]["count"] == total - (AGGREGATE_MAX_EVENTS - 1)
    assert combined[0]["message"] == f"(combined from similar events): created part {total - 1}"


def test_an_object_gets_a_burst_of_events_then_none(cluster):
    written = asyncio.run(_emit_all(cluster, [(configmap("spam"), "Warning", f"Reason{i}", "x")
                                              for i in range(SPAM_BURST + 5)]))
    assert all(w is not None for w in written[:SPAM_BURST])
    assert all(w is None for w in written[SPAM_BURST:])
    assert len(_events_about(cluster, "spam")) == SPAM_BURST
    # other objects keep their own budget
    assert asyncio.run(_emit_all(cluster, [(configmap("quiet"), "Normal", "Ok", "fine")]))[0] is not None
