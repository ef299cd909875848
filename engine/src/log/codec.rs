//! The canonical binary encoding's building blocks (layouts in `FORMAT.md`).
//!
//! One value has exactly one encoding: integers are fixed-width big-endian, strings and byte strings
//! carry a `u32` length, options a `0`/`1` tag, enums a known code, maps strictly increasing keys.
//! Decoders accept only that encoding (anything else is an error naming the byte offset and the
//! field), so `encode(decode(b)) == b` for every accepted `b`.

use std::collections::BTreeMap;
use std::fmt;

/// Appends canonical encodings to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A `u32` length and the bytes. A length beyond `u32::MAX` saturates; such an entry is far
    /// above [`super::MAX_ENTRY_BYTES`] and is refused as a whole by the entry encoder.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(v);
    }

    pub fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads canonical encodings from a byte slice, tracking the offset for error messages.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Why bytes are not a canonical encoding: the byte offset, the field being read and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset} ({field}): {problem}")]
pub struct DecodeError {
    pub offset: usize,
    pub field: &'static str,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("needs {needed} more bytes, {available} left")]
    Truncated { needed: u64, available: usize },
    #[error("not valid UTF-8")]
    InvalidUtf8,
    #[error("tag {0} is neither 0 (absent) nor 1 (present)")]
    BadTag(u8),
    #[error("unknown code {0}")]
    UnknownCode(u64),
    #[error("map keys are not strictly increasing")]
    NotSorted,
    #[error("{0} bytes left over after the last field")]
    TrailingBytes(usize),
    #[error("encoding version {found} is not supported (this build reads version {supported})")]
    UnknownVersion { found: u8, supported: u8 },
    #[error("unknown decision kind 0x{0:04x} (written by a newer allot?)")]
    UnknownKind(u16),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn error(&self, field: &'static str, problem: Problem) -> DecodeError {
        DecodeError {
            offset: self.pos,
            field,
            problem,
        }
    }

    fn take(&mut self, n: u64, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let available = self.buf.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= available => {
                let out = &self.buf[self.pos..self.pos + n];
                self.pos += n;
                Ok(out)
            }
            _ => Err(self.error(
                field,
                Problem::Truncated {
                    needed: n,
                    available,
                },
            )),
        }
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, field)?);
        Ok(out)
    }

    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub fn digest(&mut self, field: &'static str) -> Result<[u8; 32], DecodeError> {
        self.array(field)
    }

    pub fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        self.take(u64::from(len), field)
    }

    pub fn str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let bytes = self.bytes(field)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError {
            offset: start,
            field,
            problem: Problem::InvalidUtf8,
        })
    }

    /// Fails unless every byte was read: trailing bytes would give one value two encodings.
    pub fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(self.error(field, Problem::TrailingBytes(n))),
        }
    }
}

/// A value with one canonical encoding and a human-readable rendering (for `allot audit show`).
pub trait Canonical: Sized {
    fn encode(&self, w: &mut Writer);
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError>;
    fn render(&self) -> String;
}

impl Canonical for u32 {
    fn encode(&self, w: &mut Writer) {
        w.u32(*self);
    }
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        r.u32(field)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl Canonical for u64 {
    fn encode(&self, w: &mut Writer) {
        w.u64(*self);
    }
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        r.u64(field)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl Canonical for String {
    fn encode(&self, w: &mut Writer) {
        w.bytes(self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        r.str(field).map(str::to_owned)
    }
    fn render(&self) -> String {
        format!("{self:?}")
    }
}

/// An opaque byte string (for example a randomness beacon's value).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", hex::encode(&self.0))
    }
}

impl Canonical for Bytes {
    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.0);
    }
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        r.bytes(field).map(|b| Bytes(b.to_vec()))
    }
    fn render(&self) -> String {
        format!("0x{}", hex::encode(&self.0))
    }
}

/// A SHA-256 digest carried in a decision (an input set, an outcome, a seed, a run id).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 of `data`.
    /// A digest from its 64 lowercase hex digits (a blob's file name).
    pub fn parse_hex(text: &str) -> Option<Digest> {
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Digest(out))
    }

    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Digest(sha2::Sha256::digest(data).into())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", hex::encode(self.0))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Canonical for Digest {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        r.digest(field).map(Digest)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl<T: Canonical> Canonical for Option<T> {
    fn encode(&self, w: &mut Writer) {
        match self {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                v.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        match r.u8(field)? {
            0 => Ok(None),
            1 => T::decode(r, field).map(Some),
            tag => Err(DecodeError {
                offset: r.position() - 1,
                field,
                problem: Problem::BadTag(tag),
            }),
        }
    }
    fn render(&self) -> String {
        match self {
            None => "none".to_owned(),
            Some(v) => v.render(),
        }
    }
}

/// Named parameters of an allocation run, such as `precedence=own-category-first`. Keys are unique
/// and encoded in increasing byte order, so the same parameters always give the same bytes.
pub type Parameters = BTreeMap<String, String>;

impl Canonical for Parameters {
    fn encode(&self, w: &mut Writer) {
        w.u32(u32::try_from(self.len()).unwrap_or(u32::MAX));
        for (key, value) in self {
            w.bytes(key.as_bytes());
            w.bytes(value.as_bytes());
        }
    }
    fn decode(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        let count = r.u32(field)?;
        let mut out = BTreeMap::new();
        let mut last: Option<&str> = None;
        for _ in 0..count {
            let at = r.position();
            let key = r.str(field)?;
            if last.is_some_and(|last| last.as_bytes() >= key.as_bytes()) {
                return Err(DecodeError {
                    offset: at,
                    field,
                    problem: Problem::NotSorted,
                });
            }
            let value = r.str(field)?;
            out.insert(key.to_owned(), value.to_owned());
            last = Some(key);
        }
        Ok(out)
    }
    fn render(&self) -> String {
        let pairs: Vec<String> = self.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{{{}}}", pairs.join(", "))
    }
}

/// Defines a struct whose canonical encoding is its fields' encodings in declaration order.
/// Field order is part of the format: never reorder, insert or remove fields of a released type.
macro_rules! canonical_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        impl $name {
            /// Field names and rendered values, in encoding order.
            pub fn fields(&self) -> Vec<(&'static str, String)> {
                vec![$( (stringify!($field), $crate::log::codec::Canonical::render(&self.$field)) ),*]
            }
        }

        impl $crate::log::codec::Canonical for $name {
            fn encode(&self, w: &mut $crate::log::codec::Writer) {
                $( $crate::log::codec::Canonical::encode(&self.$field, w); )*
            }
            fn decode(
                r: &mut $crate::log::codec::Reader<'_>,
                _field: &'static str,
            ) -> Result<Self, $crate::log::codec::DecodeError> {
                Ok(Self {
                    $( $field: <$ty as $crate::log::codec::Canonical>::decode(
                        r,
                        concat!(stringify!($name), ".", stringify!($field)),
                    )?, )*
                })
            }
            fn render(&self) -> String {
                let parts: Vec<String> =
                    self.fields().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                parts.join(" ")
            }
        }
    };
}

/// Defines a fieldless enum encoded as one byte. Codes are part of the format: never reuse one.
macro_rules! canonical_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn code(self) -> u8 {
                match self { $( $name::$variant => $code ),* }
            }

            pub fn name(self) -> &'static str {
                match self { $( $name::$variant => stringify!($variant) ),* }
            }
        }

        impl $crate::log::codec::Canonical for $name {
            fn encode(&self, w: &mut $crate::log::codec::Writer) {
                w.u8(self.code());
            }
            fn decode(
                r: &mut $crate::log::codec::Reader<'_>,
                field: &'static str,
            ) -> Result<Self, $crate::log::codec::DecodeError> {
                match r.u8(field)? {
                    $( $code => Ok($name::$variant), )*
                    other => Err($crate::log::codec::DecodeError {
                        offset: r.position() - 1,
                        field,
                        problem: $crate::log::codec::Problem::UnknownCode(u64::from(other)),
                    }),
                }
            }
            fn render(&self) -> String {
                self.name().to_owned()
            }
        }
    };
}

pub(crate) use {canonical_enum, canonical_struct};

#[cfg(test)]
mod tests {
    use super::*;

    fn encode<T: Canonical>(v: &T) -> Vec<u8> {
        let mut w = Writer::new();
        v.encode(&mut w);
        w.into_bytes()
    }

    fn decode<T: Canonical>(bytes: &[u8]) -> Result<T, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = T::decode(&mut r, "test")?;
        r.finish("test")?;
        Ok(v)
    }

    /// Layouts written out by hand from FORMAT.md.
    #[test]
    fn primitive_layouts() {
        check(&encode(&0x0102_0304u32), "01020304");
        check(&encode(&1u64), "0000000000000001");
        check(&encode(&"hé".to_owned()), "00000003" /* len */);
        check(&encode(&"hé".to_owned())[4..], "68c3a9");
        check(&encode(&None::<u32>), "00");
        check(&encode(&Some(7u32)), "0100000007");
        let params: Parameters = [("b", "2"), ("a", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        check(&encode(&params), "00000002" /* count */);
        check(
            &encode(&params)[4..],
            "0000000161000000013100000001620000000132",
        );

        fn check(bytes: &[u8], expect_prefix: &str) {
            assert!(
                hex::encode(bytes).starts_with(expect_prefix),
                "{} does not start with {expect_prefix}",
                hex::encode(bytes)
            );
        }
    }

    #[test]
    fn non_canonical_inputs_are_rejected() {
        // Each input is one byte away from a canonical encoding.
        check::<Option<u32>>(
            "02",
            "byte 0 (test): tag 2 is neither 0 (absent) nor 1 (present)",
        );
        check::<String>("00000002c328", "byte 0 (test): not valid UTF-8");
        check::<String>("00000005abcd", "byte 4 (test): needs 5 more bytes, 2 left");
        check::<u32>(
            "0000000100",
            "byte 4 (test): 1 bytes left over after the last field",
        );
        // Keys "b" then "a": not increasing.
        check::<Parameters>(
            "000000020000000162000000013200000001610000000131",
            "byte 14 (test): map keys are not strictly increasing",
        );
        // A repeated key is not increasing either.
        check::<Parameters>(
            "000000020000000161000000013100000001610000000132",
            "byte 14 (test): map keys are not strictly increasing",
        );

        fn check<T: Canonical + fmt::Debug>(input: &str, expect: &str) {
            let bytes = hex::decode(input).expect("test input is hex");
            match decode::<T>(&bytes) {
                Ok(v) => panic!("{input} decoded to {v:?}, expected error {expect}"),
                Err(e) => assert_eq!(e.to_string(), expect, "input {input}"),
            }
        }
    }
}
