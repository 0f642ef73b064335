//! Framing: every message in both directions is a 4-byte big-endian **signed** length `N`
//! followed by `N` bytes of payload.
//!
//! * Sans-io reading: [`check`] tells whether a whole frame is buffered (cheap, consumes
//!   nothing); [`parse`] splits the payload of one frame off the front of a `BytesMut`,
//!   leaving any following bytes for the next call.
//! * Writing: [`encode_frame`] appends length + payload for any [`Encode`] value (use a pair
//!   such as `(RequestHeader, Request)` for header + body); [`write_frame`] does the same for
//!   a closure that writes the payload. Both patch the length in after writing.
//! * With the `codec` feature (on by default): [`FrameCodec`], a
//!   `tokio_util::codec::{Decoder, Encoder}` built on the same functions.
//!
//! A negative length, or one above the maximum, is an error — never a panic, and nothing is
//! allocated for a claimed length before its bytes arrive.
//!
//! **Maximum frame length.** [`DEFAULT_MAX_FRAME_LEN`] is 2 × `jute.maxbuffer` =
//! 2,097,150 bytes: Java's default `jute.maxbuffer` (0xfffff) plus the default
//! `zookeeper.jute.maxbuffer.extrasize` (equal to `jute.maxbuffer`), the same headroom Java's
//! `BinaryInputArchive` allows for a single field. The Java server and client themselves
//! close the connection on frames longer than 0xfffff; pass
//! [`JUTE_MAX_BUFFER`] to get exactly that behaviour.
//!
//! Four-letter words (`ruok`, `srvr`, ...) arrive as 4 raw bytes instead of a length; read as
//! a length they are far above any sane maximum (`ruok` = 1,920,298,859), so a server must
//! look for them before framing the first bytes of a connection.
//!
//! ```
//! use bytes::BytesMut;
//! use zk_proto::frame::{self, DEFAULT_MAX_FRAME_LEN};
//! use zk_proto::records::RequestHeader;
//! use zk_proto::Request;
//!
//! let mut wire = BytesMut::new();
//! frame::encode_frame(&mut wire, DEFAULT_MAX_FRAME_LEN, &(RequestHeader::ping(), Request::Ping))?;
//! wire.extend_from_slice(&[0, 0]); // the start of the next frame
//! assert_eq!(frame::check(&wire, DEFAULT_MAX_FRAME_LEN)?, Some(12));
//!
//! let payload = frame::parse(&mut wire, DEFAULT_MAX_FRAME_LEN)?.unwrap_or_default();
//! assert_eq!(&payload[..], &[0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11]);
//! assert_eq!(&wire[..], &[0, 0]); // left for the next call
//! assert_eq!(frame::parse(&mut wire, DEFAULT_MAX_FRAME_LEN)?, None);
//! # Ok::<(), zk_proto::DecodeError>(())
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{DecodeError, Encode, JUTE_MAX_BUFFER};

/// Size of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Default maximum payload length: 2 × 0xfffff = 2,097,150 bytes (see the
/// [module docs](self) for why).
pub const DEFAULT_MAX_FRAME_LEN: usize = 2 * JUTE_MAX_BUFFER;

/// Reads and validates the length prefix at the front of `buf`, if 4 bytes are there.
fn read_length(buf: &[u8], max_frame_len: usize) -> Result<Option<usize>, DecodeError> {
    let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX_LEN>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(*prefix);
    let len = usize::try_from(len).map_err(|_| DecodeError::NegativeLength(len))?;
    if len > max_frame_len {
        return Err(DecodeError::TooLong {
            len,
            max: max_frame_len,
        });
    }
    Ok(Some(len))
}

/// Checks whether `buf` starts with a whole frame.
///
/// Returns `Ok(Some(total))` with the frame's total size (prefix included) when it is all
/// there, `Ok(None)` when more bytes are needed, and an error as soon as the length prefix is
/// negative or above `max_frame_len` (even before the payload arrived).
pub fn check(buf: &[u8], max_frame_len: usize) -> Result<Option<usize>, DecodeError> {
    match read_length(buf, max_frame_len)? {
        Some(len) if buf.len() - LENGTH_PREFIX_LEN >= len => Ok(Some(LENGTH_PREFIX_LEN + len)),
        _ => Ok(None),
    }
}

/// Takes one whole frame off the front of `buf` and returns its payload (without the length
/// prefix). Bytes after the frame stay in `buf`; when the frame is incomplete, `buf` is left
/// untouched and `Ok(None)` is returned.
pub fn parse(buf: &mut BytesMut, max_frame_len: usize) -> Result<Option<Bytes>, DecodeError> {
    let Some(total) = check(buf, max_frame_len)? else {
        return Ok(None);
    };
    let mut frame = buf.split_to(total);
    let _prefix = frame.split_to(LENGTH_PREFIX_LEN);
    Ok(Some(frame.freeze()))
}

/// Appends one frame to `dst`: a length placeholder, whatever `write_payload` writes, then
/// the real length patched in. Returns the payload length.
///
/// If the payload exceeds `max_frame_len`, `dst` is restored to its previous length and
/// [`DecodeError::TooLong`] is returned.
pub fn write_frame<F>(
    dst: &mut BytesMut,
    max_frame_len: usize,
    write_payload: F,
) -> Result<usize, DecodeError>
where
    F: FnOnce(&mut BytesMut),
{
    let start = dst.len();
    dst.put_i32(0);
    write_payload(dst);
    let len = dst.len() - start - LENGTH_PREFIX_LEN;
    let prefix = match i32::try_from(len) {
        Ok(prefix) if len <= max_frame_len => prefix,
        _ => {
            dst.truncate(start);
            return Err(DecodeError::TooLong {
                len,
                max: max_frame_len,
            });
        }
    };
    dst[start..start + LENGTH_PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
    Ok(len)
}

/// Appends `payload` as one frame to `dst`, e.g. `&(header, body)`. Returns the payload
/// length.
///
/// Oversized payloads are refused before anything is written ([`DecodeError::TooLong`]).
pub fn encode_frame<T: Encode + ?Sized>(
    dst: &mut BytesMut,
    max_frame_len: usize,
    payload: &T,
) -> Result<usize, DecodeError> {
    let len = payload.encoded_len();
    if len > max_frame_len {
        return Err(DecodeError::TooLong {
            len,
            max: max_frame_len,
        });
    }
    dst.reserve(LENGTH_PREFIX_LEN + len);
    write_frame(dst, max_frame_len, |buf| payload.encode(buf))
}

#[cfg(feature = "codec")]
pub use self::codec_impl::{CodecError, FrameCodec};

#[cfg(feature = "codec")]
mod codec_impl {
    use bytes::{Bytes, BytesMut};
    use tokio_util::codec::{Decoder, Encoder};

    use super::{DEFAULT_MAX_FRAME_LEN, LENGTH_PREFIX_LEN, encode_frame, parse, read_length};
    use crate::codec::{DecodeError, Encode};

    /// Most bytes reserved ahead of time for a frame that is still arriving; the buffer
    /// grows in steps of at most this much, whatever the length prefix claims.
    const RESERVE_CHUNK: usize = 64 * 1024;

    /// Error of [`FrameCodec`]: an I/O error from the transport, or a bad frame.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum CodecError {
        /// The underlying transport failed.
        #[error("i/o error: {0}")]
        Io(#[from] std::io::Error),
        /// A frame length was negative or too large.
        #[error("bad frame: {0}")]
        Frame(#[from] DecodeError),
    }

    /// A `tokio_util` codec for length-prefixed frames.
    ///
    /// Decodes to the frame payload (`Bytes`, prefix removed); encodes any [`Encode`] value
    /// (typically `(RequestHeader, Request)` or `(ReplyHeader, Response)`, or a
    /// `ConnectRequest`) as one frame.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use tokio_util::codec::{Decoder, Encoder};
    /// use zk_proto::frame::FrameCodec;
    /// use zk_proto::records::RequestHeader;
    /// use zk_proto::Request;
    ///
    /// let mut codec = FrameCodec::new();
    /// let mut buf = BytesMut::new();
    /// codec.encode((RequestHeader::ping(), Request::Ping), &mut buf)?;
    /// let payload = codec.decode(&mut buf)?;
    /// assert_eq!(payload.map(|p| p.len()), Some(8));
    /// # Ok::<(), zk_proto::frame::CodecError>(())
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct FrameCodec {
        max_frame_len: usize,
    }

    impl FrameCodec {
        /// A codec with [`DEFAULT_MAX_FRAME_LEN`].
        pub fn new() -> Self {
            FrameCodec {
                max_frame_len: DEFAULT_MAX_FRAME_LEN,
            }
        }

        /// A codec that refuses payloads longer than `max_frame_len` in both directions.
        pub fn with_max_frame_len(max_frame_len: usize) -> Self {
            FrameCodec { max_frame_len }
        }

        /// The configured maximum payload length.
        pub fn max_frame_len(&self) -> usize {
            self.max_frame_len
        }
    }

    impl Default for FrameCodec {
        fn default() -> Self {
            FrameCodec::new()
        }
    }

    impl Decoder for FrameCodec {
        type Item = Bytes;
        type Error = CodecError;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
            if let Some(frame) = parse(src, self.max_frame_len)? {
                return Ok(Some(frame));
            }
            // Incomplete: make room for (part of) the rest, bounded so that a hostile length
            // prefix cannot make us allocate what has not arrived.
            if let Some(len) = read_length(src, self.max_frame_len)? {
                let missing = (LENGTH_PREFIX_LEN + len).saturating_sub(src.len());
                src.reserve(missing.min(RESERVE_CHUNK));
            }
            Ok(None)
        }
    }

    impl<T: Encode> Encoder<T> for FrameCodec {
        type Error = CodecError;

        fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), CodecError> {
            encode_frame(dst, self.max_frame_len, &item)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ReplyHeader, RequestHeader};
    use crate::request::Request;

    const MAX: usize = DEFAULT_MAX_FRAME_LEN;

    #[test]
    fn check_needs_the_whole_frame() {
        let frame = [0, 0, 0, 3, 1, 2, 3];
        for cut in 0..frame.len() {
            assert_eq!(check(&frame[..cut], MAX), Ok(None), "cut {cut}");
        }
        assert_eq!(check(&frame, MAX), Ok(Some(7)));
        assert_eq!(check(&[0, 0, 0, 0], MAX), Ok(Some(4)));
    }

    #[test]
    fn parse_leaves_the_rest() {
        let mut buf = BytesMut::from(&[0, 0, 0, 1, 9, 0, 0, 0, 2, 7][..]);
        assert_eq!(parse(&mut buf, MAX), Ok(Some(Bytes::from_static(&[9]))));
        assert_eq!(&buf[..], &[0, 0, 0, 2, 7]);
        assert_eq!(parse(&mut buf, MAX), Ok(None));
        assert_eq!(&buf[..], &[0, 0, 0, 2, 7]);
        buf.put_u8(8);
        assert_eq!(parse(&mut buf, MAX), Ok(Some(Bytes::from_static(&[7, 8]))));
        assert!(buf.is_empty());
    }

    #[test]
    fn bad_lengths_fail_before_the_payload_arrives() {
        assert_eq!(
            check(&[0xff, 0xff, 0xff, 0xff], MAX),
            Err(DecodeError::NegativeLength(-1))
        );
        assert_eq!(
            check(&[0x80, 0, 0, 0], MAX),
            Err(DecodeError::NegativeLength(i32::MIN))
        );
        assert_eq!(
            check(&[0x7f, 0xff, 0xff, 0xff], MAX),
            Err(DecodeError::TooLong {
                len: i32::MAX as usize,
                max: MAX
            })
        );
        assert_eq!(
            check(b"ruok", MAX),
            Err(DecodeError::TooLong {
                len: 0x7275_6f6b,
                max: MAX
            })
        );
        // Exactly the limit is fine; one more is not.
        let at_limit = i32::try_from(JUTE_MAX_BUFFER)
            .unwrap_or_default()
            .to_be_bytes();
        assert_eq!(check(&at_limit, JUTE_MAX_BUFFER), Ok(None));
        let over = i32::try_from(JUTE_MAX_BUFFER + 1)
            .unwrap_or_default()
            .to_be_bytes();
        assert!(matches!(
            check(&over, JUTE_MAX_BUFFER),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn encode_frame_patches_the_length() {
        let mut dst = BytesMut::from(&b"xx"[..]);
        let n = encode_frame(&mut dst, MAX, &(RequestHeader::ping(), Request::Ping));
        assert_eq!(n, Ok(8));
        assert_eq!(
            &dst[..],
            &[b'x', b'x', 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11]
        );
    }

    #[test]
    fn oversized_frames_are_refused_and_leave_dst_alone() {
        let mut dst = BytesMut::from(&b"keep"[..]);
        let header = ReplyHeader {
            xid: 1,
            zxid: 2,
            err: 0,
        };
        assert_eq!(
            encode_frame(&mut dst, 15, &header),
            Err(DecodeError::TooLong { len: 16, max: 15 })
        );
        assert_eq!(&dst[..], b"keep");
        let written = write_frame(&mut dst, 3, |buf| buf.put_slice(b"abcd"));
        assert_eq!(written, Err(DecodeError::TooLong { len: 4, max: 3 }));
        assert_eq!(&dst[..], b"keep");
        assert_eq!(encode_frame(&mut dst, 16, &header), Ok(16));
    }

    #[cfg(feature = "codec")]
    #[test]
    fn codec_roundtrip_and_bounded_reserve() {
        use tokio_util::codec::{Decoder, Encoder};

        let mut codec = FrameCodec::with_max_frame_len(JUTE_MAX_BUFFER);
        assert_eq!(codec.max_frame_len(), JUTE_MAX_BUFFER);
        let mut buf = BytesMut::new();
        assert!(
            codec
                .encode(
                    ReplyHeader {
                        xid: 1,
                        zxid: 2,
                        err: 0
                    },
                    &mut buf
                )
                .is_ok()
        );
        let frame = codec.decode(&mut buf);
        assert!(matches!(frame, Ok(Some(ref p)) if p.len() == 16));

        // A prefix claiming 1,000,000 bytes with 10 present reserves at most one chunk.
        let mut buf = BytesMut::new();
        buf.put_i32(1_000_000);
        buf.put_slice(&[0; 10]);
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        assert!(buf.capacity() < 200 * 1024, "capacity {}", buf.capacity());

        let mut bad = BytesMut::from(&[0xff, 0xff, 0xff, 0xf0][..]);
        assert!(matches!(
            codec.decode(&mut bad),
            Err(CodecError::Frame(DecodeError::NegativeLength(-16)))
        ));
        let mut too_big = BytesMut::new();
        too_big.put_i32(0x10_0000);
        assert!(matches!(
            codec.decode(&mut too_big),
            Err(CodecError::Frame(DecodeError::TooLong { .. }))
        ));
    }
}
