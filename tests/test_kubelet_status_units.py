"""The kubelet's view of a pod's status lags its own writes: the informer's copy of the pod
arrives after the write that changed it. A sync woken in between must compare against what the
kubelet last wrote (upstream's status manager cache), or it writes the same status again with
every condition's lastTransitionTime moved to now."""

from kybernetes.kubelet.pods import PodState, _known_status


def _pod(rv: int, status: dict) -> dict:
    return {"metadata": {"name": "p", "uid": "u1", "resourceVersion": str(rv)}, "status": status}


WRITTEN = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True",
                                                "lastTransitionTime": "2026-11-26T03:31:58Z"}]}


def test_an_informer_copy_older_than_the_kubelets_write_gives_way_to_the_write():
    st = PodState("u1", "node-a", written=WRITTEN, written_rv=12)
    stale = _pod(11, {"phase": "Pending"})
    assert _known_status(stale, st) is WRITTEN


def test_a_copy_as_new_or_newer_than_the_write_is_the_truth():
    st = PodState("u1", "node-a", written=WRITTEN, written_rv=12)
    same = _pod(12, dict(WRITTEN))
    newer = _pod(15, {"phase": "Running", "conditions": [], "message": "written by someone else"})
    assert _known_status(same, st) == WRITTEN
    assert _known_status(newer, st)["message"] == "written by someone else"


def test_before_any_write_the_informer_copy_is_used():
    assert _known_status(_pod(3, {"phase": "Pending"}), PodState("u1", "node-a")) == {"phase": "Pending"}
    assert _known_status(_pod(3, {"phase": "Pending"}), None) == {"phase": "Pending"}
