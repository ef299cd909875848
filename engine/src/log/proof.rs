//! Inclusion and consistency proofs and their verification, following RFC 9162 2.1.3.2 and
//! 2.1.4.2 step by step. Hashes are `[u8; 32]`, so a hash of another length cannot reach these
//! functions; parsers of proofs from outside reject such hashes with their position.
//!
//! Beyond the RFC's loops, both verifiers first check the exact proof length for the sizes given
//! (as transparency-dev/merkle does), so a padded or truncated proof fails with a clear reason.

use super::merkle::{Hash, node_hash};

/// Proof that leaf `index` is in the tree of `size` leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    /// Audit path, deepest sibling first.
    pub path: Vec<Hash>,
}

/// Proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub path: Vec<Hash>,
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("the proof has {got} hashes; sizes {sizes} need exactly {expected}")]
    WrongLength {
        got: usize,
        expected: usize,
        sizes: String,
    },
    #[error("a consistency proof from the empty tree is not defined (RFC 9162 2.1.4)")]
    FromEmptyTree,
    #[error("the old size {old} is above the new size {new}")]
    SizesDecrease { old: u64, new: u64 },
    #[error("equal sizes need an empty proof, got {0} hashes")]
    NotEmptyForEqualSizes(usize),
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    #[error("the proof does not lead to the old root")]
    OldRootMismatch,
}

fn bit_len(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size` (index < size): the
/// levels below the point where the paths to `index` and to the last leaf part, plus one per
/// left-hand complete subtree above it.
fn inclusion_len(index: u64, size: u64) -> usize {
    let inner = bit_len(index ^ (size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// RFC 9162 2.1.3.2: verifies that `leaf` (a leaf hash) is at `index` in the tree of `size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let expected = inclusion_len(index, size);
    if path.len() != expected {
        return Err(ProofError::WrongLength {
            got: path.len(),
            expected,
            sizes: format!("index {index} in size {size}"),
        });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && r == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// RFC 9162 2.1.4.2: verifies that the tree of `old_size` leaves with root `old_root` is a prefix
/// of the tree of `new_size` leaves with root `new_root`. From size 0 there is no proof (refused);
/// equal sizes need an empty proof and equal roots.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    path: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if old_size > new_size {
        return Err(ProofError::SizesDecrease {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !path.is_empty() {
            return Err(ProofError::NotEmptyForEqualSizes(path.len()));
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // The old tree's rightmost complete subtree; unless it is the whole old tree (old size a
    // power of two), the proof starts with its hash. The rest is its path in the new tree.
    let level = old_size.trailing_zeros();
    let node = (old_size - 1) >> level;
    let seeded = node == 0;
    let expected = inclusion_len(node, ((new_size - 1) >> level) + 1) + usize::from(!seeded);
    if path.len() != expected {
        return Err(ProofError::WrongLength {
            got: path.len(),
            expected,
            sizes: format!("{old_size} -> {new_size}"),
        });
    }
    // Step 2: if the old size is a power of two, the old root is the first node.
    let (first, rest) = if seeded {
        (*old_root, path)
    } else {
        match path.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(ProofError::RootMismatch),
        }
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    Ok(())
}

impl InclusionProof {
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> Result<(), ProofError> {
        verify_inclusion(leaf, self.index, self.size, &self.path, root)
    }
}

impl ConsistencyProof {
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ProofError> {
        verify_consistency(self.old_size, self.new_size, old_root, new_root, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::merkle::{self, MemTree, empty_root, leaf_hash};
    use proptest::prelude::*;

    fn h(hex: &str) -> Hash {
        hex::decode(hex).expect("hex").try_into().expect("32 bytes")
    }

    /// The published vectors of transparency-dev/merkle, proof/verify_test.go (`leaves`, `roots`,
    /// `inclusionProofs`, `consistencyProofs`); the Go file numbers leaves from 1, these from 0.
    mod published {
        pub const LEAVES: [&str; 8] = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ];
        /// Roots of the first 1..=8 leaves.
        pub const ROOTS: [&str; 8] = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        pub const EMPTY_ROOT: &str =
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        /// (leaf index from 0, tree size, path).
        pub const INCLUSION: [(u64, u64, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        /// (old size, new size, path).
        pub const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
    }

    fn published_tree(n: usize) -> MemTree {
        let leaves: Vec<Vec<u8>> = published::LEAVES[..n]
            .iter()
            .map(|l| hex::decode(l).expect("hex"))
            .collect();
        MemTree::from_leaves(leaves.iter().map(Vec::as_slice))
    }

    fn root_of(size: u64) -> Hash {
        match size {
            0 => h(published::EMPTY_ROOT),
            n => h(published::ROOTS[n as usize - 1]),
        }
    }

    /// One data-driven check for the published vectors: `input` is what is computed, `expect`
    /// the published value.
    enum Vector {
        Root {
            size: u64,
        },
        Inclusion {
            index: u64,
            size: u64,
            path: &'static [&'static str],
        },
        Consistency {
            old: u64,
            new: u64,
            path: &'static [&'static str],
        },
    }

    fn check(input: Vector) {
        let tree = published_tree(8);
        match input {
            Vector::Root { size } => {
                assert_eq!(
                    published_tree(size as usize).root(),
                    root_of(size),
                    "root {size}"
                );
                assert_eq!(
                    merkle::root(&tree, size).unwrap(),
                    root_of(size),
                    "prefix {size}"
                );
            }
            Vector::Inclusion { index, size, path } => {
                let expect: Vec<Hash> = path.iter().map(|p| h(p)).collect();
                let prefix = published_tree(size as usize);
                let got = merkle::inclusion_path(&prefix, index, size).unwrap();
                assert_eq!(got, expect, "inclusion {index} in {size}");
                let leaf = leaf_hash(&hex::decode(published::LEAVES[index as usize]).unwrap());
                verify_inclusion(&leaf, index, size, &expect, &root_of(size)).unwrap();
            }
            Vector::Consistency { old, new, path } => {
                let expect: Vec<Hash> = path.iter().map(|p| h(p)).collect();
                let prefix = published_tree(new as usize);
                let got = merkle::consistency_path(&prefix, old, new).unwrap();
                assert_eq!(got, expect, "consistency {old} -> {new}");
                verify_consistency(old, new, &root_of(old), &root_of(new), &expect).unwrap();
            }
        }
    }

    #[test]
    fn published_vectors() {
        assert_eq!(empty_root(), h(published::EMPTY_ROOT));
        for size in 0..=8 {
            check(Vector::Root { size });
        }
        for (index, size, path) in published::INCLUSION {
            check(Vector::Inclusion { index, size, path });
        }
        for (old, new, path) in published::CONSISTENCY {
            check(Vector::Consistency { old, new, path });
        }
    }

    /// The edge cases RFC 9162 and transparency-dev/merkle's TestVerifyConsistency name.
    #[test]
    fn consistency_edge_cases() {
        let (a, b) = (h(published::ROOTS[0]), h(published::ROOTS[1]));
        let empty = empty_root();
        check(
            verify_consistency(0, 0, &empty, &empty, &[]),
            Err(ProofError::FromEmptyTree),
        );
        check(
            verify_consistency(0, 1, &empty, &a, &[]),
            Err(ProofError::FromEmptyTree),
        );
        check(verify_consistency(1, 1, &a, &a, &[]), Ok(()));
        check(
            verify_consistency(1, 1, &a, &b, &[]),
            Err(ProofError::RootMismatch),
        );
        check(
            verify_consistency(1, 1, &a, &a, &[a]),
            Err(ProofError::NotEmptyForEqualSizes(1)),
        );
        check(
            verify_consistency(2, 1, &a, &b, &[]),
            Err(ProofError::SizesDecrease { old: 2, new: 1 }),
        );
        check(
            verify_consistency(1, 2, &a, &b, &[]),
            Err(ProofError::WrongLength {
                got: 0,
                expected: 1,
                sizes: "1 -> 2".into(),
            }),
        );

        fn check(got: Result<(), ProofError>, expect: Result<(), ProofError>) {
            assert_eq!(got, expect);
        }
    }

    #[test]
    fn inclusion_edge_cases() {
        let leaf = leaf_hash(b"data");
        // A one-leaf tree: the root is the leaf hash and the path is empty.
        check(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
        check(
            verify_inclusion(&leaf, 0, 1, &[], &empty_root()),
            Err(ProofError::RootMismatch),
        );
        for (index, size) in [(0, 0), (1, 0), (1, 1), (2, 1)] {
            check(
                verify_inclusion(&leaf, index, size, &[], &leaf),
                Err(ProofError::IndexBeyondSize { index, size }),
            );
        }
        let root = h(published::ROOTS[7]);
        check(
            verify_inclusion(&leaf, 0, 8, &[leaf, leaf], &root),
            Err(ProofError::WrongLength {
                got: 2,
                expected: 3,
                sizes: "index 0 in size 8".into(),
            }),
        );

        fn check(got: Result<(), ProofError>, expect: Result<(), ProofError>) {
            assert_eq!(got, expect);
        }
    }

    fn flip(h: &Hash, bit: usize) -> Hash {
        let mut out = *h;
        out[bit / 8 % 32] ^= 1 << (bit % 8);
        out
    }

    fn tree_of(n: u64) -> MemTree {
        let mut t = MemTree::new();
        for i in 0..n {
            t.push(leaf_hash(&i.to_be_bytes()));
        }
        t
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every proof the tree gives verifies; flipping any one bit of the proof, the root or
        /// the leaf makes it fail; so do neighbouring indices and sizes.
        #[test]
        fn inclusion_proofs_verify_and_detect_flips(
            n in 1u64..600, i_seed: u64, bit in 0usize..256, which: u8,
        ) {
            let i = i_seed % n;
            let tree = tree_of(n);
            let root = tree.root();
            let leaf = leaf_hash(&i.to_be_bytes());
            let path = merkle::inclusion_path(&tree, i, n).unwrap();
            prop_assert_eq!(verify_inclusion(&leaf, i, n, &path, &root), Ok(()));
            prop_assert!(verify_inclusion(&flip(&leaf, bit), i, n, &path, &root).is_err());
            prop_assert!(verify_inclusion(&leaf, i, n, &path, &flip(&root, bit)).is_err());
            if !path.is_empty() {
                let mut bad = path.clone();
                let k = which as usize % bad.len();
                bad[k] = flip(&bad[k], bit);
                prop_assert!(verify_inclusion(&leaf, i, n, &bad, &root).is_err());
                prop_assert!(verify_inclusion(&leaf, i, n, &path[1..], &root).is_err());
            }
            let mut longer = path.clone();
            longer.push(root);
            prop_assert!(verify_inclusion(&leaf, i, n, &longer, &root).is_err());
            if i + 1 < n {
                prop_assert!(verify_inclusion(&leaf, i + 1, n, &path, &root).is_err());
            }
        }

        #[test]
        fn consistency_proofs_verify_and_detect_flips(
            n in 1u64..600, m_seed: u64, bit in 0usize..256, which: u8,
        ) {
            let m = 1 + m_seed % n;
            let tree = tree_of(n);
            let (old_root, new_root) = (merkle::root(&tree, m).unwrap(), tree.root());
            let path = merkle::consistency_path(&tree, m, n).unwrap();
            prop_assert_eq!(verify_consistency(m, n, &old_root, &new_root, &path), Ok(()));
            prop_assert!(
                verify_consistency(m, n, &flip(&old_root, bit), &new_root, &path).is_err()
            );
            prop_assert!(
                verify_consistency(m, n, &old_root, &flip(&new_root, bit), &path).is_err()
            );
            if !path.is_empty() {
                let mut bad = path.clone();
                let k = which as usize % bad.len();
                bad[k] = flip(&bad[k], bit);
                prop_assert!(verify_consistency(m, n, &old_root, &new_root, &bad).is_err());
                prop_assert!(
                    verify_consistency(m, n, &old_root, &new_root, &path[1..]).is_err()
                );
            }
            let mut longer = path.clone();
            longer.push(new_root);
            prop_assert!(verify_consistency(m, n, &old_root, &new_root, &longer).is_err());
            prop_assert!(verify_consistency(0, n, &empty_root(), &new_root, &[]).is_err());
        }
    }
}
