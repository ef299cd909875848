//! Connecting to a running server: the channel (plain or TLS) and the bearer token every call
//! carries. The CLI's remote mode, the load generator and the tests use it.
//!
//! [`ApiChannel`] is any way to reach the API: a server over the network ([`over_network`]), or
//! the service inside this process ([`crate::server::local`]); [`Api`] gives the clients of
//! every service over one.

use std::time::Duration;

use tonic::body::Body;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::proto::v1::appointments_client::AppointmentsClient;
use crate::proto::v1::audit_client::AuditClient;
use crate::proto::v1::fairs_client::FairsClient;
use crate::proto::v1::metrics_client::MetricsClient;
use crate::proto::v1::scenarios_client::ScenariosClient;
use crate::proto::v1::schools_client::SchoolsClient;

/// The largest message a client accepts or sends (a stream batch of entries, a large answer).
pub const CLIENT_MAX_MESSAGE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("server address {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("the token is not valid metadata (it must be printable ASCII)")]
    BadToken,
    #[error("connecting to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// Opens a channel to `url` (`http://host:port`, or `https://host:port` for TLS). For TLS the
/// server's certificate must chain to `ca_pem` if given, else to the system's roots.
pub async fn connect(url: &str, ca_pem: Option<&[u8]>) -> Result<Channel, ConnectError> {
    let bad = |reason: &str| ConnectError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let tls = if url.starts_with("https://") {
        true
    } else if url.starts_with("http://") {
        false
    } else {
        return Err(bad("give http://HOST:PORT, or https://HOST:PORT for TLS"));
    };
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| bad(&e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if tls {
        let config = match ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        endpoint = endpoint
            .tls_config(config)
            .map_err(|e| bad(&e.to_string()))?;
    }
    endpoint
        .connect()
        .await
        .map_err(|source| ConnectError::Connect {
            url: url.to_owned(),
            source,
        })
}

/// Adds `authorization: Bearer <token>` to every call (nothing without a token).
#[derive(Debug, Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> Result<Bearer, ConnectError> {
        match token {
            None => Ok(Bearer(None)),
            Some(token) => format!("Bearer {token}")
                .parse()
                .map(|v| Bearer(Some(v)))
                .map_err(|_| ConnectError::BadToken),
        }
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry a bearer token.
pub type Authorized = InterceptedService<Channel, Bearer>;

pub fn audit(channel: Channel, bearer: Bearer) -> AuditClient<Authorized> {
    AuditClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
        .max_encoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
}

pub fn metrics(channel: Channel, bearer: Bearer) -> MetricsClient<Authorized> {
    MetricsClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
        .max_encoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
}

pub fn appointments(channel: Channel, bearer: Bearer) -> AppointmentsClient<Authorized> {
    AppointmentsClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
        .max_encoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
}

pub fn fairs(channel: Channel, bearer: Bearer) -> FairsClient<Authorized> {
    FairsClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
        .max_encoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
}

pub fn schools(channel: Channel, bearer: Bearer) -> SchoolsClient<Authorized> {
    SchoolsClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
        .max_encoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
}

/// A way to reach the API, remote or in process.
pub type ApiChannel = tower::util::BoxCloneSyncService<
    http::Request<Body>,
    http::Response<Body>,
    Box<dyn std::error::Error + Send + Sync>,
>;

/// A server's channel whose calls carry `bearer`, as an [`ApiChannel`].
pub fn over_network(channel: Channel, bearer: Bearer) -> ApiChannel {
    use tower::ServiceExt as _;
    let service = InterceptedService::new(channel, bearer);
    ApiChannel::new(
        service
            .map_response(|r| r.map(Body::new))
            .map_err(Into::into),
    )
}

/// The clients of every service over one channel, with [`CLIENT_MAX_MESSAGE_BYTES`].
#[derive(Clone)]
pub struct Api(ApiChannel);

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Api")
    }
}

macro_rules! client {
    ($name:ident, $client:ident) => {
        pub fn $name(&self) -> $client<ApiChannel> {
            $client::new(self.0.clone())
                .max_decoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
                .max_encoding_message_size(CLIENT_MAX_MESSAGE_BYTES)
        }
    };
}

impl Api {
    pub fn new(channel: ApiChannel) -> Self {
        Api(channel)
    }

    client!(appointments, AppointmentsClient);
    client!(fairs, FairsClient);
    client!(schools, SchoolsClient);
    client!(scenarios, ScenariosClient);
    client!(audit, AuditClient);
    client!(metrics, MetricsClient);
}
