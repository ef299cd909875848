//! The log over HTTP in the tlog-tiles layout (c2sp.org/tlog-tiles): `GET /checkpoint`, `GET
//! /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`, for anyone (no token: an entry
//! holds decisions, never a secret). Full tiles and bundles never change and are cached for a
//! year; partial ones and the checkpoint are revalidated.

use std::sync::Arc;

use allot_engine::log::tiles::{TILE_WIDTH, TileId};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::state::AppState;

/// The routes of the tiles face.
pub fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .with_state(state)
}

fn text(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

/// The latest signed checkpoint, or with witnesses the latest one their quorum cosigned.
async fn checkpoint(State(state): State<Arc<AppState>>) -> Response {
    let note = if state.cosigned.policy().is_some() {
        match state.cosigned.latest() {
            Some(cosigned) => cosigned.note,
            None => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no checkpoint has reached the witnesses' quorum yet\n".into(),
                );
            }
        }
    } else {
        match state.checkpoints.latest() {
            Some(signed) => signed.note,
            None => match state.checkpoints.sign(&state.log).await {
                Ok(signed) => signed.note,
                Err(status) => {
                    return text(StatusCode::SERVICE_UNAVAILABLE, status.message().into());
                }
            },
        }
    };
    let mut response = note.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn tile(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
    let Some((bundle, tile)) = parse(&path) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("not a tile path: tile/{path}"),
        );
    };
    let log = state.log.clone();
    let read = tokio::task::spawn_blocking(move || match bundle {
        true => log.entry_bundle(tile),
        false => log.tile(tile),
    });
    let bytes = match read.await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return text(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let cache = match tile.width == TILE_WIDTH {
        true => "public, max-age=31536000, immutable",
        false => "no-cache",
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]` (after `tile/`): whether it is an entry bundle,
/// and the tile. `<N>` is three-digit groups, all but the last prefixed with `x`.
pub fn parse(path: &str) -> Option<(bool, TileId)> {
    let (head, rest) = path.split_once('/')?;
    let (bundle, level) = match head {
        "entries" => (true, 0),
        level => (false, level.parse::<u8>().ok().filter(|l| *l < 8)?),
    };
    let (index_path, width) = match rest.split_once(".p/") {
        Some((index, width)) => {
            let width: u32 = width.parse().ok().filter(|w| (1..TILE_WIDTH).contains(w))?;
            (index, width)
        }
        None => (rest, TILE_WIDTH),
    };
    let groups: Vec<&str> = index_path.split('/').collect();
    let mut index: u64 = 0;
    for (i, group) in groups.iter().enumerate() {
        let digits = match i + 1 == groups.len() {
            true => *group,
            false => group.strip_prefix('x')?,
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    let tile = TileId {
        level,
        index,
        width,
    };
    // One spelling per tile: the path must be the one the tile gives.
    let canonical = match bundle {
        true => tile.entries_path(),
        false => tile.path(),
    };
    (canonical == format!("tile/{path}")).then_some((bundle, tile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_to_the_tiles_that_give_them() {
        let tile = |level, index, width| TileId {
            level,
            index,
            width,
        };
        for (path, expect) in [
            ("0/x001/x234/067", Some((false, tile(0, 1_234_067, 256)))),
            ("0/x001/x234/067.p/8", Some((false, tile(0, 1_234_067, 8)))),
            ("entries/005.p/3", Some((true, tile(0, 5, 3)))),
            ("2/000", Some((false, tile(2, 0, 256)))),
            ("0/5", None),
            ("0/x000/005", None),
            ("0/005.p/256", None),
            ("0/005.p/0", None),
            ("9/000", None),
            ("entries/x1/005", None),
            ("0/005/", None),
        ] {
            assert_eq!(parse(path), expect, "{path}");
        }
    }
}
