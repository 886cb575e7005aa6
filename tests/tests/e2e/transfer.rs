//! 100 MB through the proxy in each direction with curl, sampling the
//! proxy's RSS during the transfer: bodies must stream, not buffer.

use std::io::Write;

use weft_e2e::{finish_curl, scratch_dir, spawn_curl, wait_sampling_rss};
use weft_test_support::{HttpTestServer, ProxyProcess};

use crate::{assert_metric_reaches, proxy_arg, url};

const SIZE: u64 = 100 * 1024 * 1024;
/// Upper bound for the proxy's resident memory while 100 MB pass through.
const MAX_RSS_KIB: u64 = 64 * 1024;

#[test]
fn upload_100mb_outbound_with_bounded_rss() {
    let app = HttpTestServer::start();
    let proxy = ProxyProcess::builder().spawn();
    let dir = scratch_dir("upload");
    let file = dir.join("upload.bin");
    {
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&file).expect("create upload file"));
        let chunk = vec![b'u'; 1024 * 1024];
        for _ in 0..SIZE / chunk.len() as u64 {
            out.write_all(&chunk).expect("write upload file");
        }
    }
    let file_arg = file.to_string_lossy().into_owned();
    let (mut child, curl_dir) = spawn_curl(&[
        "-x",
        &proxy_arg(&proxy),
        "-X",
        "POST",
        "-T",
        &file_arg,
        &url(app.addr(), "/upload"),
    ]);
    let max_rss = wait_sampling_rss(&mut child, &proxy);
    let out = finish_curl(child, curl_dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        (out.exit_code, out.http_code),
        (0, 200),
        "upload failed: {}",
        out.stderr
    );
    assert_eq!(
        out.body_text().trim(),
        SIZE.to_string(),
        "the app received a different byte count"
    );
    assert!(
        max_rss < MAX_RSS_KIB,
        "proxy RSS reached {max_rss} KiB during a 100 MB upload"
    );
    eprintln!("max proxy RSS during the upload: {max_rss} KiB");
    // The body really went through the proxy's outbound listener.
    assert_metric_reaches(
        &proxy,
        "tcp_read_bytes_total",
        &[("direction", "outbound"), ("peer", "src")],
        SIZE as f64,
    );
}

/// Downloads `SIZE` bytes from an app behind the proxy's inbound listener
/// with extra curl arguments, checks the transfer completed and the proxy's
/// RSS stayed under the bound; returns the proxy for metric checks.
fn download_through_inbound(curl_args: &[&str], what: &str) -> ProxyProcess {
    let app = HttpTestServer::start();
    let proxy = ProxyProcess::builder().inbound_forward(app.addr()).spawn();
    let target = url(proxy.inbound_addr(), &format!("/bytes/{SIZE}"));
    let mut args = curl_args.to_vec();
    args.extend(["-o", "/dev/null", &target]);
    let (mut child, curl_dir) = spawn_curl(&args);
    let max_rss = wait_sampling_rss(&mut child, &proxy);
    let out = finish_curl(child, curl_dir);
    assert_eq!(
        (out.exit_code, out.http_code),
        (0, 200),
        "{what} failed: {}",
        out.stderr
    );
    assert_eq!(out.size_download, SIZE);
    assert!(
        max_rss < MAX_RSS_KIB,
        "proxy RSS reached {max_rss} KiB during a {what}"
    );
    eprintln!("max proxy RSS during a {what}: {max_rss} KiB");
    proxy
}

#[test]
fn download_100mb_inbound_with_bounded_rss() {
    let proxy = download_through_inbound(&[], "100 MB download");
    // The body really went through the proxy's inbound listener.
    assert_metric_reaches(
        &proxy,
        "tcp_write_bytes_total",
        &[("direction", "inbound"), ("peer", "src")],
        SIZE as f64,
    );
}

/// A slow HTTP/2 reader: the app could send 100 MB at once, so only flow
/// control and backpressure keep the proxy from buffering it.
#[test]
fn download_100mb_h2_slow_client_inbound_with_bounded_rss() {
    download_through_inbound(
        &["--http2-prior-knowledge", "--limit-rate", "50M"],
        "throttled 100 MB HTTP/2 download",
    );
}
