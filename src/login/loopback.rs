//! The loopback redirect listener of RFC 8252 §7.3: binds `127.0.0.1` (never a
//! wildcard address, §8.3) and waits for the browser's one callback request.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::session::{AuthorizationStart, CallbackError, code_from_callback};

/// Longest request head read from the browser; a callback URL is far shorter.
const MAX_REQUEST: usize = 16 * 1024;
/// How long one connection may take to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the loopback listener on `port` (0: any free port, RFC 8252 §7.3).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).await
}

/// Answers requests on `listener` until one carries this login's code (returned) or the
/// provider's refusal (an error). Requests with another path, state or issuer are
/// answered and ignored, so a stray or forged request cannot end the login.
pub async fn wait_for_code(
    listener: &TcpListener,
    start: &AuthorizationStart,
    issuer: &str,
) -> Result<String, CallbackError> {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let Ok(Some(target)) = tokio::time::timeout(READ_TIMEOUT, request_target(&mut stream)).await else {
            continue;
        };
        match code_from_callback(&target, start, issuer) {
            Ok(code) => {
                respond(&mut stream, "200 OK", "Signed in. You can close this window and return to the terminal.\n")
                    .await;
                return Ok(code);
            }
            Err(error) if error.is_final() => {
                respond(&mut stream, "400 Bad Request", &format!("Sign-in failed: {error}\n")).await;
                return Err(error);
            }
            Err(CallbackError::NotCallback) => respond(&mut stream, "404 Not Found", "Not found.\n").await,
            Err(error) => respond(&mut stream, "400 Bad Request", &format!("Ignored: {error}.\n")).await,
        }
    }
}

/// The request target of a `GET` request head, `None` for anything else.
async fn request_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 || head.len() + read > MAX_REQUEST {
            return None;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let line = std::str::from_utf8(&head).ok()?.lines().next()?;
    match line.split(' ').collect::<Vec<_>>().as_slice() {
        ["GET", target, version] if version.starts_with("HTTP/1.") => Some((*target).to_owned()),
        _ => None,
    }
}

/// A plain-text answer: no markup, so nothing in it can be injected into a page.
async fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
