//! The jute binary encoding: the [`Encode`] / [`Decode`] traits, the primitive types, and the
//! crate's error type [`DecodeError`].
//!
//! Jute writes a record as its fields in declaration order, big-endian, with no tags or padding:
//!
//! | jute type | Rust type here | bytes |
//! |---|---|---|
//! | `byte` | `i8` | 1 |
//! | `boolean` | `bool` | 1; written as 0/1, **any non-zero byte reads as `true`** (as Java does) |
//! | `int` | `i32` | 4 |
//! | `long` | `i64` | 8 |
//! | `buffer` | `Option<Bytes>` | `int` length + bytes; length -1 = `None` (null) |
//! | `buffer` | `Bytes` | same, but a null buffer reads as empty (lossy, for fields that are never null) |
//! | `ustring` | `Option<String>` | `int` length + UTF-8; length -1 = `None` |
//! | `ustring` | `String` | same, but a null string reads as `""` (lossy, see below) |
//! | `vector<T>` | `Option<Vec<T>>` | `int` count + elements; count -1 = `None` |
//! | `vector<T>` | `Vec<T>` | same, but a null vector reads as empty (lossy) |
//!
//! **Null handling.** Java can write null strings, buffers and vectors. Records in this crate use
//! the `Option` forms where null actually happens on the wire (znode data, SASL tokens, reconfig
//! arguments) and the plain forms elsewhere; decoding a null into a plain field gives the empty
//! value, so re-encoding such an (unusual) input yields length 0 instead of -1.
//!
//! **Strings.** Written as standard UTF-8. Decoding is lenient: invalid UTF-8 is replaced with
//! U+FFFD (like Java's reader), so decoding never fails on string content. Java's *writer* emits
//! CESU-8 for characters outside the BMP (six bytes instead of four); those bytes are invalid
//! UTF-8 and read back as replacement characters, exactly as in Java's reader.
//!
//! **Hostile input.** Every length or count is checked before anything is allocated: negative
//! values other than -1 are [`DecodeError::NegativeLength`], string/buffer lengths above
//! [`MAX_FIELD_LEN`] are [`DecodeError::TooLong`], and a length or count that claims more bytes
//! than remain is [`DecodeError::UnexpectedEof`]. A vector's count is checked against the
//! smallest possible encoding of its elements ([`Decode::MIN_LEN`]), so a count of 2^31 on a
//! 20-byte body reserves nothing.
//!
//! ```
//! use bytes::Bytes;
//! use zk_proto::{Decode, Encode};
//!
//! let value: (i32, Option<String>) = (7, Some("/a".to_owned()));
//! let bytes = value.to_bytes();
//! assert_eq!(&bytes[..], &[0, 0, 0, 7, 0, 0, 0, 2, b'/', b'a']);
//!
//! let mut buf = bytes.clone();
//! let number = i32::decode(&mut buf)?;
//! let path = Option::<String>::decode(&mut buf)?;
//! assert_eq!((number, path), value);
//! # Ok::<(), zk_proto::DecodeError>(())
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::op_code::OpCode;

/// Java's default `jute.maxbuffer`: 0xfffff = 1,048,575 bytes.
///
/// The Java server and client refuse frames longer than this by default.
pub const JUTE_MAX_BUFFER: usize = 0xfffff;

/// Largest string or buffer length accepted when decoding: 2 × [`JUTE_MAX_BUFFER`] =
/// 2,097,150 bytes.
///
/// This is Java's `BinaryInputArchive` sanity check: `jute.maxbuffer` plus
/// `zookeeper.jute.maxbuffer.extrasize`, whose default equals `jute.maxbuffer`.
pub const MAX_FIELD_LEN: usize = 2 * JUTE_MAX_BUFFER;

/// Why bytes could not be decoded (or a frame could not be built).
///
/// [`UnexpectedEof`](Self::UnexpectedEof) means "not enough bytes": on a stream, wait for more;
/// inside a complete frame, the payload is truncated. Every other variant means the bytes are
/// invalid and waiting will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("unexpected end of input: {needed} more byte(s) needed")]
    UnexpectedEof {
        /// How many more bytes the decoder needed at the point it stopped (a lower bound).
        needed: usize,
    },
    /// A length or count prefix was negative (and not the null marker -1), or a frame length
    /// was negative.
    #[error("negative length {0}")]
    NegativeLength(i32),
    /// A length exceeds its limit: a string/buffer above [`MAX_FIELD_LEN`], or a frame above
    /// the configured maximum (when reading or writing).
    #[error("length {len} exceeds the limit of {max} bytes")]
    TooLong {
        /// The length found (or about to be written).
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A numeric code had no known meaning where one was required (e.g. an opcode).
    #[error(transparent)]
    Unknown(#[from] UnknownValue),
    /// The opcode is known but has no body of the requested kind (e.g. `createSession` as a
    /// client request).
    #[error("opcode {op:?} has no {what} body")]
    UnsupportedOp {
        /// The opcode.
        op: OpCode,
        /// `"request"` or `"response"`.
        what: &'static str,
    },
    /// A multi (or multiRead) header named an op type that is not allowed there.
    #[error("op type {op} is not allowed in a {what}")]
    InvalidMultiOp {
        /// The raw op type from the `MultiHeader`.
        op: i32,
        /// `"multi request"`, `"multiRead request"` or `"multi response"`.
        what: &'static str,
    },
    /// Bytes were left over after a whole frame payload was decoded.
    #[error("{0} unexpected trailing byte(s)")]
    TrailingBytes(usize),
    /// A reply's xid matches no pending request, so its body cannot be interpreted.
    #[error("no pending request with xid {0}")]
    UnknownXid(i32),
}

impl DecodeError {
    /// `true` for [`DecodeError::UnexpectedEof`]: more bytes might complete the value.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, DecodeError::UnexpectedEof { .. })
    }
}

/// A number that is not a known value of a protocol enum.
///
/// Returned by every `TryFrom<i32>` conversion in this crate (opcodes, error codes, event
/// types, ...); it carries the number so nothing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("unknown {kind} {value}")]
pub struct UnknownValue {
    /// What was being converted, e.g. `"opcode"`.
    pub kind: &'static str,
    /// The number received.
    pub value: i32,
}

/// A value with a jute encoding.
pub trait Encode {
    /// Appends the encoding to `buf`.
    fn encode<B: BufMut>(&self, buf: &mut B);

    /// The exact number of bytes [`encode`](Self::encode) writes.
    fn encoded_len(&self) -> usize;

    /// Encodes into a new buffer of exactly the right size.
    fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }
}

/// A value that can be read from its jute encoding.
pub trait Decode: Sized {
    /// The fewest bytes any encoding of this type takes; used to reject vector counts that
    /// cannot fit in the remaining input before allocating.
    const MIN_LEN: usize = 1;

    /// Reads one value from the front of `buf`.
    ///
    /// On error the position of `buf` is unspecified.
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError>;

    /// Decodes a value that must use up `buf` entirely, e.g. a whole frame payload.
    ///
    /// Leftover bytes are [`DecodeError::TrailingBytes`].
    fn decode_exact<B: Buf>(mut buf: B) -> Result<Self, DecodeError> {
        let value = Self::decode(&mut buf)?;
        ensure_consumed(&buf)?;
        Ok(value)
    }
}

/// Returns [`DecodeError::TrailingBytes`] if `buf` still has bytes.
pub fn ensure_consumed<B: Buf>(buf: &B) -> Result<(), DecodeError> {
    match buf.remaining() {
        0 => Ok(()),
        n => Err(DecodeError::TrailingBytes(n)),
    }
}

/// Fails with [`DecodeError::UnexpectedEof`] unless `n` bytes remain.
fn need<B: Buf>(buf: &B, n: usize) -> Result<(), DecodeError> {
    let have = buf.remaining();
    if have < n {
        Err(DecodeError::UnexpectedEof { needed: n - have })
    } else {
        Ok(())
    }
}

/// Reads a length prefix: `None` for -1 (null), an error for other negatives, for lengths
/// above `max`, and for lengths longer than the remaining input.
fn read_len<B: Buf>(buf: &mut B, max: usize) -> Result<Option<usize>, DecodeError> {
    let len = i32::decode(buf)?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| DecodeError::NegativeLength(len))?;
    if len > max {
        return Err(DecodeError::TooLong { len, max });
    }
    need(buf, len)?;
    Ok(Some(len))
}

/// Length of a length-prefixed string/buffer/vector as an `i32` prefix.
///
/// Encoders never see more than `i32::MAX` bytes in practice (frames are ~1 MiB); should it
/// happen, the prefix saturates rather than wrapping into a negative (null-looking) length.
fn len_prefix(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

impl Encode for i8 {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i8(*self);
    }
    fn encoded_len(&self) -> usize {
        1
    }
}

impl Decode for i8 {
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        need(buf, 1)?;
        Ok(buf.get_i8())
    }
}

impl Encode for bool {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_u8(u8::from(*self));
    }
    fn encoded_len(&self) -> usize {
        1
    }
}

impl Decode for bool {
    /// Any non-zero byte is `true`, as in Java's `DataInput.readBoolean`.
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        need(buf, 1)?;
        Ok(buf.get_u8() != 0)
    }
}

impl Encode for i32 {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(*self);
    }
    fn encoded_len(&self) -> usize {
        4
    }
}

impl Decode for i32 {
    const MIN_LEN: usize = 4;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        need(buf, 4)?;
        Ok(buf.get_i32())
    }
}

impl Encode for i64 {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i64(*self);
    }
    fn encoded_len(&self) -> usize {
        8
    }
}

impl Decode for i64 {
    const MIN_LEN: usize = 8;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        need(buf, 8)?;
        Ok(buf.get_i64())
    }
}

/// `buffer`, null = `None`.
impl Encode for Option<Bytes> {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            None => buf.put_i32(-1),
            Some(bytes) => bytes.encode(buf),
        }
    }
    fn encoded_len(&self) -> usize {
        4 + self.as_ref().map_or(0, Bytes::len)
    }
}

/// `buffer`, null = `None`.
impl Decode for Option<Bytes> {
    const MIN_LEN: usize = 4;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(read_len(buf, MAX_FIELD_LEN)?.map(|len| buf.copy_to_bytes(len)))
    }
}

/// `buffer` that is never null (a null reads as empty).
impl Encode for Bytes {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(len_prefix(self.len()));
        buf.put_slice(self);
    }
    fn encoded_len(&self) -> usize {
        4 + self.len()
    }
}

/// `buffer` that is never null (a null reads as empty).
impl Decode for Bytes {
    const MIN_LEN: usize = 4;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(Option::<Bytes>::decode(buf)?.unwrap_or_default())
    }
}

/// `ustring`, null = `None`; invalid UTF-8 decodes to U+FFFD.
impl Encode for Option<String> {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            None => buf.put_i32(-1),
            Some(s) => s.encode(buf),
        }
    }
    fn encoded_len(&self) -> usize {
        4 + self.as_ref().map_or(0, String::len)
    }
}

/// `ustring`, null = `None`; invalid UTF-8 decodes to U+FFFD.
impl Decode for Option<String> {
    const MIN_LEN: usize = 4;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let Some(len) = read_len(buf, MAX_FIELD_LEN)? else {
            return Ok(None);
        };
        let mut bytes = vec![0; len];
        buf.copy_to_slice(&mut bytes);
        Ok(Some(lossy_utf8(bytes)))
    }
}

/// `ustring` that is never null (a null reads as `""`).
impl Encode for String {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(len_prefix(self.len()));
        buf.put_slice(self.as_bytes());
    }
    fn encoded_len(&self) -> usize {
        4 + self.len()
    }
}

/// `ustring` that is never null (a null reads as `""`).
impl Decode for String {
    const MIN_LEN: usize = 4;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(Option::<String>::decode(buf)?.unwrap_or_default())
    }
}

/// Turns bytes into a `String`, replacing invalid UTF-8 with U+FFFD.
pub(crate) fn lossy_utf8(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    }
}

/// At most this many elements are reserved up front when decoding a vector; it grows as
/// elements actually decode.
const MAX_VEC_PREALLOC: usize = 1024;

/// `vector<T>`, null = `None`.
impl<T: Encode> Encode for Option<Vec<T>> {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        match self {
            None => buf.put_i32(-1),
            Some(items) => items.encode(buf),
        }
    }
    fn encoded_len(&self) -> usize {
        self.as_ref().map_or(4, Encode::encoded_len)
    }
}

/// `vector<T>`, null = `None`.
impl<T: Decode> Decode for Option<Vec<T>> {
    const MIN_LEN: usize = 4;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let count = i32::decode(buf)?;
        if count == -1 {
            return Ok(None);
        }
        let count = usize::try_from(count).map_err(|_| DecodeError::NegativeLength(count))?;
        // Every element takes at least MIN_LEN bytes: refuse counts that cannot fit before
        // reserving anything.
        need(buf, count.saturating_mul(T::MIN_LEN.max(1)))?;
        let mut items = Vec::with_capacity(count.min(MAX_VEC_PREALLOC));
        for _ in 0..count {
            items.push(T::decode(buf)?);
        }
        Ok(Some(items))
    }
}

/// `vector<T>` that is never null (a null reads as empty).
impl<T: Encode> Encode for Vec<T> {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        buf.put_i32(len_prefix(self.len()));
        for item in self {
            item.encode(buf);
        }
    }
    fn encoded_len(&self) -> usize {
        4 + self.iter().map(Encode::encoded_len).sum::<usize>()
    }
}

/// `vector<T>` that is never null (a null reads as empty).
impl<T: Decode> Decode for Vec<T> {
    const MIN_LEN: usize = 4;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        Ok(Option::<Vec<T>>::decode(buf)?.unwrap_or_default())
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        (**self).encode(buf);
    }
    fn encoded_len(&self) -> usize {
        (**self).encoded_len()
    }
}

/// A pair is encoded as its two parts back to back, e.g. `(RequestHeader, Request)`.
impl<X: Encode, Y: Encode> Encode for (X, Y) {
    fn encode<B: BufMut>(&self, buf: &mut B) {
        self.0.encode(buf);
        self.1.encode(buf);
    }
    fn encoded_len(&self) -> usize {
        self.0.encoded_len() + self.1.encoded_len()
    }
}

/// A pair is decoded as its two parts back to back.
impl<X: Decode, Y: Decode> Decode for (X, Y) {
    const MIN_LEN: usize = X::MIN_LEN + Y::MIN_LEN;
    fn decode<B: Buf>(buf: &mut B) -> Result<Self, DecodeError> {
        let x = X::decode(buf)?;
        let y = Y::decode(buf)?;
        Ok((x, y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: T) {
        let bytes = value.to_bytes();
        assert_eq!(bytes.len(), value.encoded_len());
        assert_eq!(T::decode_exact(bytes.clone()).as_ref(), Ok(&value));
        for cut in 0..bytes.len() {
            let err = T::decode(&mut &bytes[..cut]).err();
            assert!(
                matches!(err, Some(DecodeError::UnexpectedEof { .. })),
                "cut {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn primitives_roundtrip() {
        roundtrip(-5i8);
        roundtrip(true);
        roundtrip(false);
        roundtrip(i32::MIN);
        roundtrip(i64::MAX);
        roundtrip(String::from("/zoo/keeper"));
        roundtrip(Some(String::from("ü")));
        roundtrip(Option::<String>::None);
        roundtrip(Bytes::from_static(b"\x00\x01"));
        roundtrip(Some(Bytes::new()));
        roundtrip(Option::<Bytes>::None);
        roundtrip(vec![1i32, 2, 3]);
        roundtrip(Some(vec![String::from("a")]));
        roundtrip(Option::<Vec<i64>>::None);
        roundtrip((7i32, 8i64));
    }

    #[test]
    fn exact_bytes() {
        assert_eq!(&true.to_bytes()[..], &[1]);
        assert_eq!(&(-2i32).to_bytes()[..], &[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(&Option::<Bytes>::None.to_bytes()[..], &[0xff; 4]);
        assert_eq!(&Some(Bytes::new()).to_bytes()[..], &[0; 4]);
        assert_eq!(
            &String::from("hi").to_bytes()[..],
            &[0, 0, 0, 2, b'h', b'i']
        );
        assert_eq!(&vec![true].to_bytes()[..], &[0, 0, 0, 1, 1]);
    }

    #[test]
    fn any_nonzero_byte_is_true() {
        assert_eq!(bool::decode(&mut &[0x02u8][..]), Ok(true));
        assert_eq!(bool::decode(&mut &[0xffu8][..]), Ok(true));
        assert_eq!(bool::decode(&mut &[0u8][..]), Ok(false));
    }

    #[test]
    fn null_into_plain_fields_reads_as_empty() {
        let null = [0xffu8; 4];
        assert_eq!(String::decode(&mut &null[..]), Ok(String::new()));
        assert_eq!(Bytes::decode(&mut &null[..]), Ok(Bytes::new()));
        assert_eq!(Vec::<i32>::decode(&mut &null[..]), Ok(Vec::new()));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_an_error() {
        let bytes = [0, 0, 0, 3, b'a', 0xff, 0xc0];
        let s = String::decode(&mut &bytes[..]);
        assert_eq!(s, Ok(String::from("a\u{fffd}\u{fffd}")));
        // Java's CESU-8 encoding of U+1F600 (a surrogate pair, 3 bytes each).
        let cesu = [0, 0, 0, 6, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80];
        let s = String::decode(&mut &cesu[..]).unwrap_or_default();
        assert!(s.chars().all(|c| c == '\u{fffd}'), "{s:?}");
    }

    #[test]
    fn negative_lengths_other_than_null_are_invalid() {
        let bytes = (-2i32).to_bytes();
        assert_eq!(
            String::decode(&mut &bytes[..]),
            Err(DecodeError::NegativeLength(-2))
        );
        assert_eq!(
            Option::<Bytes>::decode(&mut &bytes[..]),
            Err(DecodeError::NegativeLength(-2))
        );
        assert_eq!(
            Vec::<i32>::decode(&mut &bytes[..]),
            Err(DecodeError::NegativeLength(-2))
        );
        let min = i32::MIN.to_bytes();
        assert_eq!(
            String::decode(&mut &min[..]),
            Err(DecodeError::NegativeLength(i32::MIN))
        );
    }

    #[test]
    fn oversized_lengths_are_invalid_even_when_truncated() {
        let len = i32::try_from(MAX_FIELD_LEN + 1).unwrap_or(i32::MAX);
        let bytes = len.to_bytes();
        let err = Option::<Bytes>::decode(&mut &bytes[..]);
        assert_eq!(
            err,
            Err(DecodeError::TooLong {
                len: MAX_FIELD_LEN + 1,
                max: MAX_FIELD_LEN
            })
        );
        let err = String::decode(&mut &i32::MAX.to_bytes()[..]);
        assert!(matches!(err, Err(DecodeError::TooLong { .. })));
    }

    #[test]
    fn lengths_beyond_the_input_are_incomplete() {
        let mut bytes = BytesMut::new();
        100i32.encode(&mut bytes);
        bytes.put_slice(&[0; 10]);
        assert_eq!(
            Bytes::decode(&mut &bytes[..]),
            Err(DecodeError::UnexpectedEof { needed: 90 })
        );
    }

    #[test]
    fn hostile_vector_count_allocates_nothing() {
        // Count 2^31-1 of ACL-sized records on a 20-byte body.
        let mut bytes = BytesMut::new();
        i32::MAX.encode(&mut bytes);
        bytes.put_slice(&[0; 16]);
        let err = Vec::<String>::decode(&mut &bytes[..]);
        assert!(
            matches!(err, Err(DecodeError::UnexpectedEof { .. })),
            "{err:?}"
        );
        let err = Vec::<bool>::decode(&mut &bytes[..]);
        assert!(
            matches!(err, Err(DecodeError::UnexpectedEof { .. })),
            "{err:?}"
        );
        // Count -7 is invalid, not null.
        let err = Vec::<i32>::decode(&mut &(-7i32).to_bytes()[..]);
        assert_eq!(err, Err(DecodeError::NegativeLength(-7)));
    }

    #[test]
    fn decode_exact_rejects_trailing_bytes() {
        let bytes = [0u8, 0, 0, 1, 9];
        assert_eq!(
            i32::decode_exact(&bytes[..]),
            Err(DecodeError::TrailingBytes(1))
        );
    }
}
