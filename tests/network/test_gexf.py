"""GEXF export: well-formed GEXF 1.3 with every account, edge and evidence attribute."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from watchfloor.network.coordination import Share, coordinated_components
from watchfloor.network.gexf import GEXF_NAMESPACE, to_gexf

NS = {"g": GEXF_NAMESPACE}


def test_gexf_has_nodes_edges_and_escaped_objects() -> None:
    odd = ["https://x.example/?a=1&b=<2>", '#"quoted"', "plain"]
    shares = [Share(acc, obj, 1_790_000_000 + i) for i, obj in enumerate(odd) for acc in ("p:1", "p:2", "p:3")]
    result = coordinated_components(shares, window_s=10, min_repetition=3)
    root = ET.fromstring(to_gexf(result))
    assert root.tag == f"{{{GEXF_NAMESPACE}}}gexf" and root.get("version") == "1.3"
    graph = root.find("g:graph", NS)
    assert graph is not None and graph.get("defaultedgetype") == "undirected"
    nodes = graph.findall("g:nodes/g:node", NS)
    edges = graph.findall("g:edges/g:edge", NS)
    assert sorted(n.get("id") for n in nodes) == ["p:1", "p:2", "p:3"]
    assert len(edges) == 3 and {e.get("weight") for e in edges} == {"3"}
    titles = {a.get("title") for a in graph.findall("g:attributes/g:attribute", NS)}
    assert {"component", "community", "shares", "pairs", "objects"} <= titles
    objects = {v.get("value") for e in edges for v in e.findall("g:attvalues/g:attvalue", NS) if v.get("for") == "1"}
    assert objects == {" ".join(sorted(odd))}


def test_an_empty_result_is_still_a_valid_document() -> None:
    root = ET.fromstring(to_gexf(coordinated_components([], window_s=10, min_repetition=1)))
    assert root.findall("g:graph/g:nodes/g:node", NS) == []
