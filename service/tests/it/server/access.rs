//! Every role against every method of the method table (registered or not), without a token and
//! with a bad one: each call is allowed or denied as the table says.

use allot_service::server::SERVED;
use allot_service::server::access::{Access, METHODS, Role};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_prost::ProstCodec;

use super::Harness;

/// Calls `path` with one empty message (every field at its default) and returns the status code:
/// of the call, or of the stream's first message or end.
async fn call(channel: &Channel, path: &'static str, token: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = Request::new(tokio_stream::iter(vec![()]));
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    let codec = ProstCodec::<(), ()>::default();
    match grpc
        .streaming(request, PathAndQuery::from_static(path), codec)
        .await
    {
        Err(status) => status.code(),
        Ok(response) => match response.into_inner().message().await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        },
    }
}

fn served(path: &str) -> bool {
    SERVED.iter().any(|s| path.starts_with(&format!("/{s}/"))) || path.starts_with("/grpc.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_method() {
    let h = Harness::start(3).await;
    let channel = h.channel().await;
    let mut checked = 0;
    for method in METHODS {
        let path = method.path;
        let no_token = call(&channel, path, None).await;
        let bad_token = call(&channel, path, Some("allot_not-a-token")).await;
        match method.access {
            Access::Public => {
                // (Reflection answers an empty request INVALID_ARGUMENT: it was reached.)
                for code in [no_token, bad_token] {
                    assert!(
                        !matches!(
                            code,
                            Code::Unauthenticated | Code::PermissionDenied | Code::Unimplemented
                        ),
                        "{path} is public: {code:?}"
                    );
                }
            }
            Access::AnyOf(_) => {
                assert_eq!(no_token, Code::Unauthenticated, "{path} without a token");
                assert_eq!(bad_token, Code::Unauthenticated, "{path} with a bad token");
            }
        }
        for role in Role::ALL {
            let code = call(&channel, path, Some(h.token(role))).await;
            let allowed = match method.access {
                Access::Public => true,
                Access::AnyOf(roles) => roles.contains(role),
            };
            if !allowed {
                assert_eq!(code, Code::PermissionDenied, "{path} as {role}");
            } else if served(path) {
                assert!(
                    !matches!(
                        code,
                        Code::Unauthenticated | Code::PermissionDenied | Code::Unimplemented
                    ),
                    "{path} as {role}: {code:?}"
                );
            } else {
                // A domain method whose handler is not registered yet.
                assert_eq!(code, Code::Unimplemented, "{path} as {role}");
            }
            checked += 1;
        }
        let code = call(&channel, path, Some(&h.all)).await;
        assert!(
            !matches!(code, Code::Unauthenticated | Code::PermissionDenied),
            "{path} with every role: {code:?}"
        );
    }
    assert_eq!(checked, METHODS.len() * Role::ALL.len());

    // A path outside the table never reaches a handler.
    assert_eq!(
        call(&channel, "/allot.v1.Audit/DeleteEntry", None).await,
        Code::Unauthenticated
    );
    assert_eq!(
        call(
            &channel,
            "/allot.v1.Audit/DeleteEntry",
            Some(h.token(Role::Auditor))
        )
        .await,
        Code::Unimplemented
    );
}
