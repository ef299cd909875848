//! What the client and the server share.

pub mod allocation;
pub mod client;
pub mod codec;
pub mod session;

/// A 32-byte field of an answer (a hash, a digest, an id), or INTERNAL naming it.
pub fn bytes32(bytes: &[u8], what: &str) -> Result<[u8; 32], tonic::Status> {
    bytes.try_into().map_err(|_| {
        tonic::Status::internal(format!(
            "the answer's {what} has {} bytes, not 32",
            bytes.len()
        ))
    })
}

/// The rows of a `requests.csv` as the referrals of a `Rebalance` request (the CLI's and the
/// console's upload).
pub fn queue(
    rows: Vec<allot_engine::appointments::inputs::RequestRow>,
) -> Vec<crate::proto::v1::QueuedRequest> {
    rows.into_iter()
        .map(|r| crate::proto::v1::QueuedRequest {
            id: r.request,
            patient_id: r.patient,
            district: r.district,
            specialty: r.specialty,
            earliest_day: r.earliest,
        })
        .collect()
}
