//! A relying party's back-channel logout endpoint on loopback (Back-Channel Logout 1.0
//! §2.5): it records every logout token POSTed to it and answers 500 to the first
//! `failures` attempts, 200 after.
// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

#[derive(Default)]
struct Received {
    /// The logout tokens of the attempts answered 200.
    delivered: Mutex<Vec<String>>,
    attempts: AtomicU32,
    failures: AtomicU32,
}

pub struct LogoutRp {
    /// The back-channel logout URI to register.
    pub uri: String,
    received: Arc<Received>,
}

async fn receive(State(received): State<Arc<Received>>, body: String) -> StatusCode {
    received.attempts.fetch_add(1, Ordering::SeqCst);
    if received.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned());
    match token {
        Some(token) => {
            received.delivered.lock().unwrap().push(token);
            StatusCode::OK
        }
        None => StatusCode::BAD_REQUEST,
    }
}

impl LogoutRp {
    /// Starts one that fails its first `failures` attempts (`u32::MAX`: always).
    pub async fn start(failures: u32) -> Self {
        let received = Arc::new(Received { failures: AtomicU32::new(failures), ..Received::default() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/backchannel-logout", listener.local_addr().unwrap());
        let app = Router::new().route("/backchannel-logout", post(receive)).with_state(Arc::clone(&received));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { uri, received }
    }

    /// The logout tokens delivered so far.
    pub fn delivered(&self) -> Vec<String> {
        self.received.delivered.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> u32 {
        self.received.attempts.load(Ordering::SeqCst)
    }

    /// Waits (up to 20 s) until `count` logout tokens were delivered, and returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        for _ in 0..200 {
            if self.delivered().len() >= count {
                return self.delivered();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{count} logout tokens were not delivered: {} attempts", self.attempts());
    }
}
