"""GEXF 1.3 export of coordination components, for Gephi and the other tools that read it.

igraph writes GraphML but not GEXF, and no maintained small library fits, so this is a
short writer on :mod:`xml.etree.ElementTree` (which escapes every value). Nodes are the
accounts (pseudonyms) with their component and community; edges carry the number of
distinct co-shared objects as ``weight``, the co-sharing pairs, and the objects.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from watchfloor.network.coordination import CoordinationResult

__all__ = ["GEXF_NAMESPACE", "to_gexf"]

GEXF_NAMESPACE = "http://gexf.net/1.3"
MAX_OBJECTS_LISTED = 50  # per edge, in the "objects" attribute


def _attributes(graph: ET.Element, cls: str, columns: list[tuple[str, str]]) -> None:
    block = ET.SubElement(graph, "attributes", {"class": cls, "mode": "static"})
    for i, (title, kind) in enumerate(columns):
        ET.SubElement(block, "attribute", {"id": str(i), "title": title, "type": kind})


def _values(parent: ET.Element, values: list[object]) -> None:
    block = ET.SubElement(parent, "attvalues")
    for i, value in enumerate(values):
        ET.SubElement(block, "attvalue", {"for": str(i), "value": str(value)})


def to_gexf(result: CoordinationResult, *, now: datetime | None = None) -> bytes:
    """The components of ``result`` as a GEXF 1.3 document (UTF-8 bytes)."""
    root = ET.Element("gexf", {"xmlns": GEXF_NAMESPACE, "version": "1.3"})
    meta = ET.SubElement(root, "meta", {"lastmodifieddate": (now or datetime.now(UTC)).date().isoformat()})
    ET.SubElement(meta, "creator").text = "watchfloor"
    ET.SubElement(meta, "description").text = (
        f"Coordinated {result.kind} sharing: accounts (pseudonyms) that co-shared at least "
        f"{result.min_repetition} distinct objects within {result.window_s:g} s of each other. "
        "A pattern to review, not a finding about anyone."
    )
    graph = ET.SubElement(root, "graph", {"mode": "static", "defaultedgetype": "undirected"})
    _attributes(graph, "node", [("component", "integer"), ("community", "integer"), ("shares", "integer")])
    _attributes(graph, "edge", [("pairs", "integer"), ("objects", "string")])
    nodes = ET.SubElement(graph, "nodes")
    edges = ET.SubElement(graph, "edges")
    edge_id = 0
    for comp in result.components:
        community_of = {a: i + 1 for i, members in enumerate(comp.communities) for a in members}
        share_count: dict[str, int] = {}
        for share in comp.shares:
            share_count[share.account] = share_count.get(share.account, 0) + 1
        for account in comp.accounts:
            node = ET.SubElement(nodes, "node", {"id": account, "label": account})
            _values(node, [comp.id, community_of.get(account, 0), share_count.get(account, 0)])
        for e in comp.edges:
            element = ET.SubElement(
                edges,
                "edge",
                {"id": str(edge_id), "source": e.a, "target": e.b, "weight": str(e.weight)},
            )
            _values(element, [e.pairs, " ".join(sorted(e.objects)[:MAX_OBJECTS_LISTED])])
            edge_id += 1
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
