//! The tiles face over HTTP, read by Cloudflare's `tlog_tiles`: the checkpoint parses as a C2SP
//! checkpoint of the log's tree, and the tiles it asks for, fetched by their C2SP paths, are
//! verified against that tree hash and give back its root; caching headers as the layout asks;
//! bad paths 400, tiles beyond the tree 404, and no token needed. With `publish_tiles`, the same
//! checkpoint and tiles are files in `DATA/tiles/`.

use std::collections::HashMap;

use tlog_tiles::{TileHashReader, TileReader};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use allot_testkit::c2sp_tile_path;

use super::Harness;

/// A GET over HTTP/1.1: status, headers (lower-case names), body.
async fn get(base: &str, path: &str) -> (u16, HashMap<String, String>, Vec<u8>) {
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

/// Tiles fetched over HTTP by their spec paths (blocking the test's runtime is fine: it has
/// threads to spare while the server answers).
struct Http {
    base: String,
    runtime: tokio::runtime::Handle,
}

impl TileReader for Http {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                // `tlog_tiles`'s own `Tile::path` is Go's sumdb form, with the height.
                let c2sp = c2sp_tile_path(Some(t.level()), t.level_index(), t.width());
                let path = format!("/{c2sp}");
                let (status, _, body) =
                    tokio::task::block_in_place(|| self.runtime.block_on(get(&self.base, &path)));
                match status {
                    200 => Ok(body),
                    _ => Err(tlog_tiles::Error::IndexesNotInTree),
                }
            })
            .collect()
    }

    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlog_tiles_reads_the_log_over_http() {
    let listen = "127.0.0.1:0".parse().unwrap();
    // Past 65,536 entries, so level-1 tiles are served too.
    let h = Harness::with(66_000, |c| {
        c.tiles_listen = Some(listen);
        c.publish_tiles = true;
    })
    .await;
    let base = h.tiles_url.clone().expect("tiles are served");

    let (status, headers, body) = get(&base, "/checkpoint").await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-cache");
    let note = String::from_utf8(body).unwrap();
    // Published as static files too: the same checkpoint, and the tiles beside it.
    let published = std::fs::read_to_string(h.dir.path().join("tiles/checkpoint")).unwrap();
    assert_eq!(published, note);
    let (_, _, full_tile) = get(&base, "/tile/1/000").await;
    assert_eq!(
        std::fs::read(h.dir.path().join("tiles/tile/1/000")).unwrap(),
        full_tile
    );
    let text = note.split_once("\n\n").unwrap().0.to_owned() + "\n";
    let checkpoint = tlog_tiles::Checkpoint::from_bytes(text.as_bytes()).unwrap();
    let size = checkpoint.size();
    assert!(size >= 66_000, "{size}");
    assert_eq!(checkpoint.hash().0, h.log.root_at(size).unwrap());

    let reader = Http {
        base: base.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let hashes = TileHashReader::new(size, *checkpoint.hash(), &reader);
    let root = tokio::task::block_in_place(|| tlog_tiles::tree_hash(size, &hashes)).unwrap();
    assert_eq!(root.0, h.log.root_at(size).unwrap());

    // A full tile is cached for good, a partial one revalidated; the same bytes as the log's.
    let (status, headers, full) = get(&base, "/tile/0/000").await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(full.len(), 256 * 32);
    let (status, headers, bundle) = get(&base, "/tile/entries/000.p/3").await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-cache");
    let first = u16::from_be_bytes([bundle[0], bundle[1]]) as usize;
    assert_eq!(bundle[2..2 + first], h.log.read(0).unwrap().bytes);

    for (path, code) in [
        ("/tile/0/5", 400),
        ("/tile/0/000.p/256", 400),
        ("/tile/x/000", 400),
        ("/tile/0/x999/000", 404),
        ("/tile/3/000", 404),
    ] {
        assert_eq!(get(&base, path).await.0, code, "{path}");
    }
}
