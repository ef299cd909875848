//! The log in the tlog-tiles layout (c2sp.org/tlog-tiles): hash tiles and entry bundles, so that
//! any client written to that specification reads allot's tree and entries.
//!
//! A tile at level `L` holds up to 256 consecutive hashes of tree level `8 L` (the roots of
//! complete subtrees of `256^L` leaves): tile `N` holds those from `256 N`, and a partial tile
//! (`.p/W`) the first `W` of them while the tree has no more. An entry bundle `N` holds entries
//! `256 N ..` as big-endian `u16` lengths followed by the entry's canonical bytes (the leaf
//! data), so an entry in a bundle has at most 65,535 bytes.

use super::Log;
use super::error::{Error, Result};
use super::merkle::NodeSource;
use crate::fs::{create_dirs, read_optional, write_hint};

/// Hashes in a full tile, entries in a full bundle.
pub const TILE_WIDTH: u32 = 256;
/// Tree levels a tile spans.
pub const TILE_HEIGHT: u32 = 8;
/// The longest entry an entry bundle can hold.
pub const MAX_BUNDLED_ENTRY_BYTES: usize = u16::MAX as usize;

/// A tile's coordinates: level, index in its level, and width (256 for a full tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileId {
    pub level: u8,
    pub index: u64,
    pub width: u32,
}

impl TileId {
    /// The tile's path: `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        format!("tile/{}/{}", self.level, self.index_path())
    }

    /// The path of entry bundle `index` (of `width` entries): `tile/entries/<N>[.p/<W>]`.
    pub fn entries_path(&self) -> String {
        format!("tile/entries/{}", self.index_path())
    }

    /// `<N>` in groups of three digits, all but the last prefixed with `x` (`x001/x234/067`),
    /// then `.p/<W>` for a partial tile.
    fn index_path(&self) -> String {
        let mut groups = vec![format!("{:03}", self.index % 1000)];
        let mut rest = self.index / 1000;
        while rest > 0 {
            groups.push(format!("x{:03}", rest % 1000));
            rest /= 1000;
        }
        groups.reverse();
        let mut path = groups.join("/");
        if self.width < TILE_WIDTH {
            path += &format!(".p/{}", self.width);
        }
        path
    }
}

impl Log {
    /// The bytes of a hash tile of the tree (any size up to the log's: complete subtrees never
    /// change): `width` hashes of 32 bytes. An error if the tree has fewer complete nodes.
    pub fn tile(&self, tile: TileId) -> Result<Vec<u8>> {
        let TileId {
            level,
            index,
            width,
        } = tile;
        let height = TILE_HEIGHT * u32::from(level);
        if width == 0 || width > TILE_WIDTH || height >= 64 {
            return Err(Error::BadRequest(format!("no tile {}", tile.path())));
        }
        let first = index
            .checked_mul(u64::from(TILE_WIDTH))
            .ok_or_else(|| Error::BadRequest(format!("no tile {}", tile.path())))?;
        let end = first + u64::from(width);
        let view = self.shared.view();
        // Complete nodes at that tree level: one per 2^height leaves.
        let complete = view.size >> height;
        if end > complete {
            return Err(Error::SizeOutOfRange {
                size: end << height,
                available: view.size,
            });
        }
        let mut bytes = Vec::with_capacity(width as usize * 32);
        for node in first..end {
            bytes.extend_from_slice(&view.node(height, node)?);
        }
        Ok(bytes)
    }

    /// The bytes of entry bundle `tile.index` with its first `tile.width` entries.
    pub fn entry_bundle(&self, tile: TileId) -> Result<Vec<u8>> {
        if tile.level != 0 || tile.width == 0 || tile.width > TILE_WIDTH {
            return Err(Error::BadRequest(format!(
                "no bundle {}",
                tile.entries_path()
            )));
        }
        let first = (tile.index)
            .checked_mul(u64::from(TILE_WIDTH))
            .ok_or_else(|| Error::BadRequest(format!("no bundle {}", tile.entries_path())))?;
        let end = first + u64::from(tile.width);
        let mut bytes = Vec::new();
        for raw in self.entries(first..end)? {
            let raw = raw?;
            let len = u16::try_from(raw.bytes.len()).map_err(|_| {
                Error::Internal(format!(
                    "entry {} has {} bytes: more than an entry bundle holds",
                    raw.index,
                    raw.bytes.len()
                ))
            })?;
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&raw.bytes);
        }
        Ok(bytes)
    }
}

/// The folder of the static tiles: `DATA/tiles/` (`checkpoint`, `tile/...`).
pub const TILES_FOLDER: &str = "tiles";

impl Log {
    /// Publishes the tree of `note` (a signed checkpoint of `size` entries) as static files in
    /// `DATA/tiles/`: every tile and entry bundle that the tree has and the last published one
    /// did not (full ones are written once; a partial one of each width, which never changes
    /// either), then the checkpoint, so a reader never finds a checkpoint whose tiles are not
    /// there. Files are hints: a crash may leave fewer, and the next publication writes them
    /// again. The number of files written.
    pub fn publish_tiles(&self, note: &str, size: u64) -> Result<usize> {
        let data = self.data_dir();
        let root = data.join(TILES_FOLDER);
        let fs = &**data.fs();
        let io = |what: &str, e: crate::fs::FsError| Error::Internal(format!("{what}: {e}"));
        let checkpoint = root.join("checkpoint");
        let published = read_optional(fs, &checkpoint)
            .ok()
            .flatten()
            .and_then(|bytes| published_size(&bytes))
            .filter(|&old| old <= size)
            .unwrap_or(0);
        let mut written = 0;
        let mut write = |path: String, bytes: Vec<u8>| -> Result<()> {
            let path = root.join(path);
            create_dirs(fs, crate::fs::parent_of(&path)).map_err(|e| io("tiles", e))?;
            write_hint(fs, &path, &bytes).map_err(|e| io("tiles", e))?;
            written += 1;
            Ok(())
        };
        for level in 0..8u8 {
            let height = TILE_HEIGHT * u32::from(level);
            let (old, new) = (published >> height, size >> height);
            if new == 0 {
                break;
            }
            if new == old {
                continue;
            }
            let width = u64::from(TILE_WIDTH);
            for index in old / width..new.div_ceil(width) {
                let tile = TileId {
                    level,
                    index,
                    width: (new - index * width).min(width) as u32,
                };
                write(tile.path(), self.tile(tile)?)?;
                if level == 0 {
                    write(tile.entries_path(), self.entry_bundle(tile)?)?;
                }
            }
        }
        write("checkpoint".into(), note.as_bytes().to_vec())?;
        Ok(written)
    }
}

/// The tree size of a published checkpoint note (its second line).
fn published_size(note: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(note).ok()?;
    text.lines().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        let tile = |level, index, width| TileId {
            level,
            index,
            width,
        };
        // The examples of c2sp.org/tlog-tiles.
        assert_eq!(tile(0, 1_234_067, 256).path(), "tile/0/x001/x234/067");
        assert_eq!(tile(0, 1_234_067, 8).path(), "tile/0/x001/x234/067.p/8");
        assert_eq!(tile(1, 0, 256).path(), "tile/1/000");
        assert_eq!(
            tile(0, 1_234_067, 256).entries_path(),
            "tile/entries/x001/x234/067"
        );
        assert_eq!(tile(0, 5, 3).entries_path(), "tile/entries/005.p/3");
    }
}
