//! Networks from `petgraph` graphs, for callers whose graph code already lives there.

use petgraph::Directed;
use petgraph::graph::{EdgeIndex, Graph};
use petgraph::visit::EdgeRef as _;

use super::{ArcId, McfError, Network, NodeId};

/// What one edge of a graph is as an arc of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArcSpec {
    /// Least flow (usually 0).
    pub lower: i64,
    /// Most flow; [`super::INFINITE_CAPACITY`] for none.
    pub upper: i64,
    pub cost: i64,
}

impl Network {
    /// The network of a directed `petgraph` graph: node `i` of the graph is [`NodeId`] `i`, edge
    /// `k` is [`ArcId`] `k` (so a [`super::Solution`]'s `flow[k]` is edge `k`'s flow), `supply`
    /// gives each node's supply (positive) or demand (negative), and `arc` each edge's bounds and
    /// cost. Bounds and supplies are checked as for [`Network::add_arc_with_lower`] and
    /// [`Network::set_supply`], naming the node or arc at fault.
    pub fn from_graph<N, E>(
        graph: &Graph<N, E, Directed>,
        supply: impl Fn(&N) -> i64,
        arc: impl Fn(&E) -> ArcSpec,
    ) -> Result<Network, McfError> {
        let mut network = Network::with_capacity(graph.node_count(), graph.edge_count());
        if graph.node_count() > 0 {
            network.add_nodes(graph.node_count())?;
        }
        for node in graph.node_indices() {
            network.set_supply(NodeId(node.index() as u32), supply(&graph[node]))?;
        }
        for edge in graph.edge_references() {
            let spec = arc(edge.weight());
            let from = NodeId(edge.source().index() as u32);
            let to = NodeId(edge.target().index() as u32);
            let id = network.add_arc_with_lower(from, to, spec.lower, spec.upper, spec.cost);
            debug_assert_eq!(id, ArcId(edge.id().index() as u32));
        }
        Ok(network)
    }
}

/// The edge of a graph that arc `arc` of [`Network::from_graph`]'s network came from.
pub fn edge_of(arc: ArcId) -> EdgeIndex {
    EdgeIndex::new(arc.index())
}
