//! I/O wrappers used on every proxied connection: [`PrefixedIo`] replays the
//! bytes read during protocol detection, [`MeteredIo`] counts bytes and
//! errors into the connection's TCP metrics.

use crate::metrics::TcpConnectionMetrics;
use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Everything a proxied stream must be.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A stream whose first reads return `prefix`, then the inner stream.
pub(crate) struct PrefixedIo<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> PrefixedIo<T> {
    /// Wraps `inner` so that `prefix` is read first.
    pub(crate) fn new(prefix: Bytes, inner: T) -> Self {
        PrefixedIo { prefix, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for PrefixedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let length = self.prefix.len().min(buffer.remaining());
            buffer.put_slice(&self.prefix[..length]);
            self.prefix.advance(length);
            if self.prefix.is_empty() {
                // Release the detection buffer the prefix was cut from.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(context, buffer)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for PrefixedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}

/// A stream that records its traffic in a connection's TCP metrics; the
/// close is recorded when it is dropped.
pub(crate) struct MeteredIo<T> {
    inner: T,
    metrics: Arc<TcpConnectionMetrics>,
}

impl<T> MeteredIo<T> {
    /// Wraps `inner`, recording into `metrics`.
    pub(crate) fn new(inner: T, metrics: TcpConnectionMetrics) -> Self {
        MeteredIo::shared(inner, Arc::new(metrics))
    }

    /// Wraps `inner`, recording into `metrics`, which others may settle
    /// (see [`TcpConnectionMetrics::settle`]).
    pub(crate) fn shared(inner: T, metrics: Arc<TcpConnectionMetrics>) -> Self {
        MeteredIo { inner, metrics }
    }

    fn record<R>(&self, result: &Poll<io::Result<R>>) {
        if let Poll::Ready(Err(error)) = result {
            self.metrics.failed(error);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for MeteredIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(context, buffer);
        self.record(&result);
        if let Poll::Ready(Ok(())) = result {
            self.metrics.read(buffer.filled().len() - before);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for MeteredIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(context, data);
        self.record(&result);
        if let Poll::Ready(Ok(written)) = result {
            self.metrics.wrote(written);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(context, buffers);
        self.record(&result);
        if let Poll::Ready(Ok(written)) = result {
            self.metrics.wrote(written);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(context);
        self.record(&result);
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(context);
        // A peer that already went away makes shutdown fail with ENOTCONN;
        // that is how connections normally end, not an error worth a label.
        if let Poll::Ready(Err(error)) = &result
            && error.kind() != io::ErrorKind::NotConnected
        {
            self.metrics.failed(error);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn prefix_is_read_before_the_stream() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut prefixed = PrefixedIo::new(Bytes::from_static(b"GET "), client);
        server.write_all(b"/ HTTP/1.1").await.unwrap();
        drop(server);
        let mut text = String::new();
        prefixed.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "GET / HTTP/1.1");
    }
}
