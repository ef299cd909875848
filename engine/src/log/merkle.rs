//! The RFC 6962 Merkle tree over entries: hashing, appending in O(log n), and building inclusion
//! and consistency proofs from stored nodes (verification is in `proof`).
//!
//! Nodes are addressed as (level, index): level 0 holds the leaf hashes, and node (k, j) is the
//! root of the complete subtree over leaves `[j * 2^k, (j + 1) * 2^k)`. Only complete subtrees are
//! ever stored; the root of a tree whose size is not a power of two, and the right-edge siblings in
//! its proofs, are folded from at most log2(n) stored nodes.

use sha2::{Digest as _, Sha256};

/// A SHA-256 node or leaf hash.
pub type Hash = [u8; 32];

/// RFC 6962 leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(data)
        .finalize()
        .into()
}

/// RFC 6962 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly below `n` (RFC 6962's k), for n >= 2.
pub(crate) fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// A place stored nodes come from: memory, files, or both.
pub trait NodeSource {
    type Error;
    /// Node (level, index); callers only ask for complete nodes inside the tree they prove.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The right edge of a tree of `size` leaves: the roots of its maximal complete subtrees, from the
/// largest (leftmost) to the smallest. Enough to append and to compute the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

/// A node completed by an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewNode {
    pub level: u32,
    pub index: u64,
    pub hash: Hash,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The right edge's nodes, largest subtree first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// A frontier from its size and nodes, as [`Frontier::nodes`] gave them; `None` if their
    /// number does not fit the size (one per bit set).
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Frontier> {
        (nodes.len() == size.count_ones() as usize).then_some(Frontier { size, nodes })
    }

    /// The frontier of the first `size` leaves, read from stored nodes.
    pub fn load<S: NodeSource>(source: &S, size: u64) -> Result<Self, S::Error> {
        let mut nodes = Vec::new();
        let mut begin = 0;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                nodes.push(source.node(level, begin >> level)?);
                begin += 1 << level;
            }
        }
        Ok(Frontier { size, nodes })
    }

    /// Appends a leaf hash and calls `emit` for it and every node it completes, lowest first.
    pub fn push(&mut self, leaf: Hash, mut emit: impl FnMut(NewNode)) {
        let mut index = self.size;
        let mut level = 0;
        let mut hash = leaf;
        emit(NewNode { level, index, hash });
        while index & 1 == 1 {
            // A right child: its left sibling is the newest frontier node.
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            index >>= 1;
            level += 1;
            emit(NewNode { level, index, hash });
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The tree head: RFC 6962 MTH of all leaves so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// Root of leaves `[begin, end)`, where `begin` is a multiple of the largest power of two not
/// above `end - begin` (true of every range RFC 6962's recursion produces). O(log n) reads.
fn range_root<S: NodeSource>(source: &S, begin: u64, end: u64) -> Result<Hash, S::Error> {
    if begin >= end {
        return Ok(empty_root());
    }
    let mut stack = Vec::with_capacity(16);
    let mut at = begin;
    while at < end {
        let level = 63 - (end - at).leading_zeros();
        stack.push(source.node(level, at >> level)?);
        at += 1 << level;
    }
    let mut hash = stack.pop().unwrap_or_else(empty_root);
    while let Some(left) = stack.pop() {
        hash = node_hash(&left, &hash);
    }
    Ok(hash)
}

/// MTH of the first `size` leaves.
pub fn root<S: NodeSource>(source: &S, size: u64) -> Result<Hash, S::Error> {
    range_root(source, 0, size)
}

/// RFC 6962 2.1.1 `PATH(index, D[size])`: the audit path of leaf `index`, deepest sibling first.
/// Callers check `index < size` (`Log::inclusion_proof` does); otherwise the path is empty.
pub(crate) fn inclusion_path<S: NodeSource>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    if index >= size {
        return Ok(Vec::new());
    }
    let mut siblings = Vec::with_capacity(64);
    let (mut begin, mut end) = (0, size);
    while end - begin > 1 {
        let k = split(end - begin);
        if index < begin + k {
            siblings.push(range_root(source, begin + k, end)?);
            end = begin + k;
        } else {
            siblings.push(range_root(source, begin, begin + k)?);
            begin += k;
        }
    }
    siblings.reverse();
    Ok(siblings)
}

/// RFC 6962 2.1.2 `PROOF(old, D[new]) = SUBPROOF(old, D[new], true)`. Callers check
/// `0 < old <= new` (`Log::consistency_proof` does); for `old == new` the proof is empty.
pub(crate) fn consistency_path<S: NodeSource>(
    source: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, S::Error> {
    if old == 0 || old >= new {
        return Ok(Vec::new());
    }
    let mut nodes = Vec::with_capacity(64);
    let (mut begin, mut end) = (0, new);
    let mut whole_old_tree = true;
    loop {
        let m = old - begin;
        let size = end - begin;
        if m == size {
            // SUBPROOF(m, D[m], b): nothing if D[m] is the old tree itself, else MTH(D[m]).
            if !whole_old_tree {
                nodes.push(range_root(source, begin, end)?);
            }
            break;
        }
        let k = split(size);
        if m <= k {
            nodes.push(range_root(source, begin + k, end)?);
            end = begin + k;
        } else {
            nodes.push(range_root(source, begin, begin + k)?);
            begin += k;
            whole_old_tree = false;
        }
    }
    nodes.reverse();
    Ok(nodes)
}

/// A whole tree in memory: every stored node, by level (the tests' tree).
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct MemTree {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

#[cfg(test)]
impl MemTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_leaves<'a>(leaves: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut tree = Self::new();
        for leaf in leaves {
            tree.push(leaf_hash(leaf));
        }
        tree
    }

    pub fn push(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.frontier.push(leaf, |n| {
            if levels.len() <= n.level as usize {
                levels.resize_with(n.level as usize + 1, Vec::new);
            }
            levels[n.level as usize].push(n.hash);
        });
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

/// Asked for a node a tree does not have.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no stored node at level {level}, index {index}")]
pub(crate) struct MissingNode {
    pub level: u32,
    pub index: u64,
}

#[cfg(test)]
impl NodeSource for MemTree {
    type Error = MissingNode;
    fn node(&self, level: u32, index: u64) -> Result<Hash, MissingNode> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(MissingNode { level, index })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// RFC 6962 2.1's definitions, transcribed literally: the oracle for the stored-node code.
    pub(crate) mod rfc {
        use super::*;

        pub fn mth(leaves: &[&[u8]]) -> Hash {
            match leaves.len() {
                0 => empty_root(),
                1 => leaf_hash(leaves[0]),
                n => {
                    let k = split(n as u64) as usize;
                    node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
                }
            }
        }

        pub fn path(m: usize, leaves: &[&[u8]]) -> Vec<Hash> {
            let n = leaves.len();
            if n <= 1 {
                return vec![];
            }
            let k = split(n as u64) as usize;
            if m < k {
                let mut p = path(m, &leaves[..k]);
                p.push(mth(&leaves[k..]));
                p
            } else {
                let mut p = path(m - k, &leaves[k..]);
                p.push(mth(&leaves[..k]));
                p
            }
        }

        pub fn subproof(m: usize, leaves: &[&[u8]], whole: bool) -> Vec<Hash> {
            let n = leaves.len();
            if m == n {
                return if whole { vec![] } else { vec![mth(leaves)] };
            }
            let k = split(n as u64) as usize;
            if m <= k {
                let mut p = subproof(m, &leaves[..k], whole);
                p.push(mth(&leaves[k..]));
                p
            } else {
                let mut p = subproof(m - k, &leaves[k..], false);
                p.push(mth(&leaves[..k]));
                p
            }
        }
    }

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
    }

    #[test]
    fn stored_node_proofs_equal_the_rfc_definitions() {
        for n in 0..=70usize {
            let data = leaves(n);
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let tree = MemTree::from_leaves(refs.iter().copied());
            assert_eq!(tree.root(), rfc::mth(&refs), "root of {n}");
            assert_eq!(
                root(&tree, n as u64).unwrap(),
                rfc::mth(&refs),
                "stored root of {n}"
            );
            for m in 0..n {
                assert_eq!(
                    inclusion_path(&tree, m as u64, n as u64).unwrap(),
                    rfc::path(m, &refs),
                    "path {m} in {n}"
                );
                assert_eq!(
                    root(&tree, m as u64).unwrap(),
                    rfc::mth(&refs[..m]),
                    "root of prefix {m} of {n}"
                );
            }
            for m in 1..=n {
                assert_eq!(
                    consistency_path(&tree, m as u64, n as u64).unwrap(),
                    rfc::subproof(m, &refs, true),
                    "consistency {m} -> {n}"
                );
            }
        }
    }

    #[test]
    fn frontier_reloads_from_stored_nodes() {
        let data = leaves(300);
        let tree = MemTree::from_leaves(data.iter().map(Vec::as_slice));
        for size in [0u64, 1, 2, 3, 64, 255, 256, 299, 300] {
            let mut f = Frontier::load(&tree, size).unwrap();
            assert_eq!(f.root(), root(&tree, size).unwrap());
            for d in &data[size as usize..] {
                f.push(leaf_hash(d), |_| {});
            }
            assert_eq!(f.root(), tree.root(), "continued from {size}");
        }
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split(n), k, "split({n})");
        }
    }
}
