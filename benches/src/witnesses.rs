//! Witnesses started in this process (c2sp.org/tlog-witness over HTTP on 127.0.0.1), for the
//! load generators that measure a log with a cosigning quorum.

use std::sync::Arc;

use allot_engine::log::VerifierKey;
use allot_engine::witness::Witness;
use allot_service::server::config::WitnessConfig;

/// Witnesses running on `runtime`, each in its own folder under `dir`, for the log `log_key`.
pub fn start(
    runtime: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    count: usize,
    log_key: &VerifierKey,
) -> anyhow::Result<Vec<WitnessConfig>> {
    let mut configs = Vec::new();
    for i in 0..count {
        let folder = dir.join(format!("witness-{i}"));
        let witness = Arc::new(Witness::open(
            folder.as_path(),
            &format!("bench.witness/{i}"),
            std::slice::from_ref(log_key),
        )?);
        let (listener, addr) =
            runtime.block_on(allot_service::witness::bind("127.0.0.1:0".parse()?))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        // Serves until the process ends.
        std::mem::forget(stop);
        configs.push(WitnessConfig {
            url: format!("http://{addr}"),
            key: witness.verifier(),
        });
        runtime.spawn(allot_service::witness::serve(witness, listener, stopped));
    }
    Ok(configs)
}
