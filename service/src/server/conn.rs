//! Accepting connections within bounds: at most `max_connections` at once (the ones beyond are
//! closed as soon as they are accepted, so idle sockets cannot pile up without limit), and a
//! connection that sends nothing within `handshake_timeout` is closed (a client that opens a
//! socket and stays silent holds no slot for long). Established HTTP/2 connections are checked
//! by keepalive pings (`mod.rs`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Sleep;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Connections refused because the limit was reached, and closed for silence (for metrics).
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    pub refused: AtomicU64,
    pub silent: AtomicU64,
}

/// An accepted connection: it holds its slot until dropped.
#[derive(Debug)]
pub struct Limited {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    /// Until the first byte arrives.
    deadline: Option<Pin<Box<Sleep>>>,
    counts: Arc<ConnectionCounts>,
    /// Once the server has closed its side: until when it reads what the client still sends.
    linger: Option<Pin<Box<Sleep>>>,
}

/// How long a closing connection waits for the client to close its side (see `poll_shutdown`).
const LINGER: Duration = Duration::from_secs(2);

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.deadline = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|d| d.as_mut().poll(cx).is_ready());
                if expired {
                    this.counts.silent.fetch_add(1, Ordering::Relaxed);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client sent nothing within the handshake timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// Closes the server's side, then reads and drops what the client still sends until it
    /// closes its side too (at most [`LINGER`]). A socket closed with unread bytes (a client's
    /// late WINDOW_UPDATE, say) is reset instead, and a reset can destroy the end of an answer
    /// the client has not read yet: a graceful shutdown would cut off the calls it let finish.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.linger.is_none() {
            std::task::ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            this.linger = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                // The client is gone either way.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    let over = this
                        .linger
                        .as_mut()
                        .is_some_and(|l| l.as_mut().poll(cx).is_ready());
                    return if over {
                        Poll::Ready(Ok(()))
                    } else {
                        Poll::Pending
                    };
                }
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    /// Not vectored, although a socket is: HTTP/2 (h2) then copies DATA frames of up to 1 KiB
    /// into its write buffer, where it otherwise sends each one over 256 bytes in a write of its
    /// own. A `FindSlots` answer (about 850 bytes) then shares one write with the other calls'
    /// frames: 3.8 writes per call became ~2.6, as for a health check (`grpc_load`).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// Accepts on `listener` within the limits; the stream ends when the receiver is dropped.
pub fn incoming(
    listener: TcpListener,
    max_connections: usize,
    handshake_timeout: Duration,
    counts: Arc<ConnectionCounts>,
) -> ReceiverStream<io::Result<Limited>> {
    let (tx, rx) = mpsc::channel(16);
    let slots = Arc::new(Semaphore::new(max_connections));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                counts.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(max_connections, "connection refused: the limit is reached");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let conn = Limited {
                stream,
                _permit: permit,
                deadline: Some(Box::pin(tokio::time::sleep(handshake_timeout))),
                counts: counts.clone(),
                linger: None,
            };
            if tx.send(Ok(conn)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}
