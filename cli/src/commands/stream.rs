//! Moving an application's bytes between stdin/stdout and a link.

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

/// Bytes per read: large enough that TLS records stay full (16 KiB each).
const COPY_BUFFER: usize = 256 * 1024;
/// Buffers between the reading and the writing half: at most 1 MiB in flight.
const IN_FLIGHT: usize = 4;

/// Pipe capacity asked for on stdin and stdout: a pipe holds 64 KiB by default, so a fast
/// producer (`tar c dir | localpair connect laptop`) and this process would wake each other every
/// 64 KiB. 1 MiB is what an unprivileged process may ask for (`/proc/sys/fs/pipe-max-size`).
#[cfg(target_os = "linux")]
const PIPE_SIZE: usize = 1 << 20;

/// Raises the capacity of stdin and stdout where they are pipes (`F_SETPIPE_SZ`); elsewhere, or
/// when refused, nothing changes.
pub(super) fn widen_std_pipes() {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsFd as _;
        // Not a pipe (a file, a terminal): EBADF, and nothing changes.
        let _ = rustix::pipe::fcntl_setpipe_size(std::io::stdin().as_fd(), PIPE_SIZE);
        let _ = rustix::pipe::fcntl_setpipe_size(std::io::stdout().as_fd(), PIPE_SIZE);
    }
}

/// Copies until the reader's end, reading the next buffer while the last one is written.
///
/// Both ends wait on something slow per call (stdin and stdout go through tokio's blocking
/// pool, the link through encryption and the socket): overlapping them keeps both busy where a
/// read-then-write loop leaves each idle half of the time. Buffers go round through two
/// bounded channels, so nothing is allocated after the start. The first error ends both halves.
pub(super) async fn copy<R, W>(reader: &mut R, writer: &mut W) -> std::io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (full_tx, mut full_rx) = mpsc::channel::<(Vec<u8>, usize)>(IN_FLIGHT);
    let (empty_tx, mut empty_rx) = mpsc::channel::<Vec<u8>>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        // Cannot fail: the channel has room for exactly these.
        let _ = empty_tx.try_send(vec![0; COPY_BUFFER]);
    }
    let reading = async move {
        while let Some(mut buffer) = empty_rx.recv().await {
            let n = reader.read(&mut buffer).await?;
            if n == 0 || full_tx.send((buffer, n)).await.is_err() {
                break;
            }
        }
        // Dropping `full_tx` tells the writing half that this was all.
        Ok::<(), std::io::Error>(())
    };
    let writing = async move {
        let mut total = 0u64;
        while let Some((buffer, n)) = full_rx.recv().await {
            writer.write_all(&buffer[..n]).await?;
            total += n as u64;
            // The reading half may have finished already; the buffer is not needed then.
            let _ = empty_tx.send(buffer).await;
        }
        Ok::<u64, std::io::Error>(total)
    };
    let ((), total) = tokio::try_join!(reading, writing)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_everything_in_order_and_reports_the_count() {
        let data: Vec<u8> = (0..(3 * COPY_BUFFER + 123))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut reader = std::io::Cursor::new(data.clone());
        let mut out = Vec::new();
        let copied = copy(&mut reader, &mut out).await.unwrap();
        assert_eq!(copied, data.len() as u64);
        assert_eq!(out, data);
    }

    #[tokio::test]
    async fn a_write_error_ends_the_copy_even_while_the_reader_waits() {
        // The reader never ends (a duplex whose other half stays open); the writer fails at once.
        let (mut reader, mut feed) = tokio::io::duplex(64);
        feed.write_all(b"some bytes").await.unwrap();
        struct Broken;
        impl AsyncWrite for Broken {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                _: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
        }
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            copy(&mut reader, &mut Broken),
        )
        .await
        .expect("the copy ended");
        assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
        drop(feed);
    }
}
