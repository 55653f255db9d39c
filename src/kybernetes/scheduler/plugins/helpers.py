"""Matching helpers shared by plugins: tolerations, node selector terms, pod affinity terms."""

from __future__ import annotations

from dataclasses import dataclass

from ...api.selectors import labels_match, requirements_from_label_selector


def tolerates(toleration: dict, taint: dict) -> bool:
    """Upstream's Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def find_untolerated_taint(taints: list[dict], tolerations: list[dict], effects: tuple[str, ...]) -> dict | None:
    for taint in taints:
        if taint.get("effect") not in effects:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def pod_tolerations(pod: dict) -> list[dict]:
    return (pod.get("spec") or {}).get("tolerations") or []


def node_taints(node: dict | None) -> list[dict]:
    return ((node or {}).get("spec") or {}).get("taints") or []


def _expr_matches(expr: dict, value: str | None, present: bool) -> bool:
    op = expr.get("operator")
    values = expr.get("values") or []
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            have, bound = int(value), int(values[0])
        except (TypeError, ValueError):
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def node_selector_term_matches(term: dict, node: dict) -> bool:
    """All expressions and fields match; a term with neither matches nothing (upstream)."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    for e in exprs:
        key = e.get("key", "")
        if not _expr_matches(e, labels.get(key), key in labels):
            return False
    for f in fields:
        if f.get("key") != "metadata.name":
            return False
        if not _expr_matches(f, meta.get("name"), True):
            return False
    return True


def node_selector_matches(selector: dict | None, node: dict) -> bool:
    """A NodeSelector: its terms are ORed."""
    if selector is None:
        return True
    return any(node_selector_term_matches(t, node) for t in selector.get("nodeSelectorTerms") or ())


def required_node_affinity_matches(pod: dict, node: dict) -> bool:
    """spec.nodeSelector and requiredDuringScheduling node affinity (upstream's RequiredNodeAffinity)."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    na = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    return node_selector_matches(required, node)


@dataclass
class AffinityTerm:
    """A PodAffinityTerm with its namespaces resolved (upstream framework.AffinityTerm)."""
    topology_key: str
    selector: list | None
    namespaces: set[str]
    namespace_selector: list | None  # None: no selector (only `namespaces` count)
    weight: int = 1

    def matches(self, pod: dict, ns_labels: dict | None = None) -> bool:
        meta = pod.get("metadata") or {}
        ns = meta.get("namespace", "")
        if ns not in self.namespaces:
            if self.namespace_selector is None or not labels_match(self.namespace_selector, ns_labels or {}):
                return False
        return self.selector is not None and labels_match(self.selector, meta.get("labels"))


def _merge_label_keys(term: dict, pod: dict) -> dict | None:
    sel = term.get("labelSelector")
    labels = (pod.get("metadata") or {}).get("labels") or {}
    extra = []
    for key in term.get("matchLabelKeys") or ():
        if key in labels:
            extra.append({"key": key, "operator": "In", "values": [labels[key]]})
    for key in term.get("mismatchLabelKeys") or ():
        if key in labels:
            extra.append({"key": key, "operator": "NotIn", "values": [labels[key]]})
    if extra and sel is not None:
        sel = {**sel, "matchExpressions": [*(sel.get("matchExpressions") or []), *extra]}
    return sel


def affinity_term(term: dict, pod: dict, weight: int = 1) -> AffinityTerm:
    ns = (pod.get("metadata") or {}).get("namespace", "")
    namespaces = set(term.get("namespaces") or ())
    ns_sel = term.get("namespaceSelector")
    if not namespaces and ns_sel is None:
        namespaces = {ns}
    return AffinityTerm(
        topology_key=term.get("topologyKey", ""),
        selector=requirements_from_label_selector(_merge_label_keys(term, pod)),
        namespaces=namespaces,
        namespace_selector=requirements_from_label_selector(ns_sel) if ns_sel is not None else None,
        weight=weight,
    )


def pod_affinity_terms(pod: dict, kind: str, required: bool) -> list[AffinityTerm]:
    """kind is podAffinity or podAntiAffinity; preferred terms carry their weight."""
    aff = ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}
    if required:
        return [affinity_term(t, pod) for t in aff.get("requiredDuringSchedulingIgnoredDuringExecution") or ()]
    return [affinity_term(w.get("podAffinityTerm") or {}, pod, int(w.get("weight") or 0))
            for w in aff.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]


def is_terminating(pod: dict) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))
