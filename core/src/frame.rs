//! Length-prefixed frames: a big-endian `u16` length, then that many bytes.
//!
//! The length is checked against the cap before a single payload byte is read, so a peer cannot
//! make us buffer more than the cap.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::Error;

/// The cap on every frame exchanged before the peer is authenticated.
pub const MAX_FRAME: usize = 8 * 1024;

/// Reads one frame of at most `cap` bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    cap: usize,
) -> Result<Vec<u8>, Error> {
    let mut header = [0u8; 2];
    reader
        .read_exact(&mut header)
        .await
        .map_err(|e| Error::io("read frame header", e))?;
    let len = usize::from(u16::from_be_bytes(header));
    if len > cap {
        return Err(Error::FrameTooLarge { len, cap });
    }
    let mut payload = vec![0u8; len];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(|e| Error::io("read frame", e))?;
    Ok(payload)
}

/// Writes one frame and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
) -> Result<(), Error> {
    let len = u16::try_from(payload.len())
        .ok()
        .filter(|&l| usize::from(l) <= MAX_FRAME)
        .ok_or(Error::FrameTooLarge {
            len: payload.len(),
            cap: MAX_FRAME,
        })?;
    let mut buf = Vec::with_capacity(payload.len() + 2);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    writer
        .write_all(&buf)
        .await
        .map_err(|e| Error::io("write frame", e))?;
    writer
        .flush()
        .await
        .map_err(|e| Error::io("flush frame", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_cap() {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        write_frame(&mut a, b"hello").await.unwrap();
        assert_eq!(read_frame(&mut b, MAX_FRAME).await.unwrap(), b"hello");

        let big = vec![7u8; 9000];
        assert!(matches!(
            write_frame(&mut a, &big).await,
            Err(Error::FrameTooLarge { .. })
        ));
        // A header announcing more than the cap is refused before the payload is read.
        a.write_all(&9000u16.to_be_bytes()).await.unwrap();
        assert!(matches!(
            read_frame(&mut b, MAX_FRAME).await,
            Err(Error::FrameTooLarge { len: 9000, .. })
        ));
    }
}
