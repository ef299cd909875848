//! Engine errors as gRPC statuses, and running blocking engine calls off the async threads.

use allot_engine::log::Error as LogError;
use allot_engine::log::backend::BackendError;
use tonic::Status;

/// A decision-log error as a status: ranges are OUT_OF_RANGE, damage DATA_LOSS, a stopped log
/// UNAVAILABLE, and anything else INTERNAL (logged, since it is the server's problem).
pub fn log_status(e: LogError) -> Status {
    let message = e.to_string();
    match e {
        LogError::OutOfRange { .. } | LogError::SizeOutOfRange { .. } => {
            Status::out_of_range(message)
        }
        LogError::BadRequest(_) => Status::invalid_argument(message),
        LogError::Corrupt { .. }
        | LogError::Decode { .. }
        | LogError::BehindCheckpoint { .. }
        | LogError::CheckpointMismatch { .. }
        | LogError::Inconsistent { .. } => {
            tracing::error!(error = %message, "decision log damaged");
            Status::data_loss(message)
        }
        LogError::Backend(
            BackendError::NotLeader { .. }
            | BackendError::Fenced { .. }
            | BackendError::Unavailable { .. },
        ) => {
            tracing::warn!(error = %message, "the log's store refused a write");
            Status::unavailable(message)
        }
        LogError::Failed(_) | LogError::Closed | LogError::ReadOnly => {
            tracing::error!(error = %message, "decision log not writable");
            Status::unavailable(message)
        }
        _ => {
            tracing::error!(error = %message, "decision log error");
            Status::internal(message)
        }
    }
}

/// Runs blocking work (file reads, fsync, signing) on tokio's blocking pool, so that the async
/// threads keep serving; a panic in it becomes INTERNAL instead of taking the server down.
pub async fn blocking<T, F>(work: F) -> Result<T, Status>
where
    F: FnOnce() -> Result<T, Status> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "blocking task failed");
            Err(Status::internal(format!("the server failed: {e}")))
        }
    }
}
