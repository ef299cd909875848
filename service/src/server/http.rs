//! Serving an axum router on its own address, as the HTTP faces (FHIR, the web console) do:
//! HTTP/1.1 and HTTP/2 on hyper-util's connection loop, TLS with the gRPC server's identity
//! (tokio-rustls), a graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::ServeError;
use super::config::TlsIdentity;

/// Serves `app` at `at` until `stop` (TLS when `tls` is given); the address bound. `name` is
/// the face's, for the logs.
pub async fn serve(
    app: Router,
    at: SocketAddr,
    tls: Option<&TlsIdentity>,
    stop: watch::Receiver<bool>,
    name: &'static str,
) -> Result<SocketAddr, ServeError> {
    let bind = |source| ServeError::Bind { addr: at, source };
    let listener = TcpListener::bind(at).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    serve_router(listener, app, tls, stop, name)?;
    tracing::info!(%addr, tls = tls.is_some(), "serving {name}");
    Ok(addr)
}

/// Serves `app` on `listener` (HTTP/1.1 and HTTP/2; TLS with `tls`, the gRPC server's identity)
/// until `stop`, on a task of its own. Calls in flight then finish (10 s at most).
fn serve_router(
    listener: TcpListener,
    app: Router,
    tls: Option<&TlsIdentity>,
    mut stop: watch::Receiver<bool>,
    name: &'static str,
) -> Result<(), ServeError> {
    let acceptor = tls.map(|tls| tls_acceptor(tls, name)).transpose()?;
    tokio::spawn(async move {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection to {name}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            };
            let _ = stream.set_nodelay(true);
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    None => {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = watcher
                            .watch(builder.serve_connection(io, service).into_owned())
                            .await;
                    }
                    Some(acceptor) => {
                        let handshake =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                        if let Ok(Ok(stream)) = handshake.await {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = watcher
                                .watch(builder.serve_connection(io, service).into_owned())
                                .await;
                        }
                    }
                }
            });
        }
        // Calls in flight finish; idle keep-alive connections close.
        let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    });
    Ok(())
}

fn tls_acceptor(tls: &TlsIdentity, name: &str) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: &dyn std::fmt::Display| ServeError::Tls(format!("{name}'s TLS: {e}"));
    let certs = CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem).map_err(|e| bad(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(&e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| bad(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
