//! The API's answers as people read them: text lines, JSON objects and CSV files. Written once
//! here so that every face shows an answer the same way: the CLI prints them, whether it runs in
//! process or against a server.

pub mod allocation;
pub mod appointments;
pub mod audit;

/// `allot mcf`'s last line: `{"status":"optimal","cost":N,"solve_seconds":S,"nodes":n,"arcs":m}`,
/// in this field order.
pub fn mcf_summary(
    cost: i64,
    solve_seconds: f64,
    network: &allot_solvers::mcf::Network,
) -> Result<String, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct Summary {
        status: &'static str,
        cost: i64,
        solve_seconds: f64,
        nodes: usize,
        arcs: usize,
    }
    serde_json::to_string(&Summary {
        status: "optimal",
        cost,
        solve_seconds,
        nodes: network.node_count(),
        arcs: network.arc_count(),
    })
}
