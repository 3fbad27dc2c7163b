//! OpenID Connect Front-Channel Logout 1.0: the frames a logged-out page renders so that
//! each relying party the user signed in to during the ended session clears its own
//! session, from the user's browser, and the Content-Security-Policy sources that let
//! exactly those frames load.

use url::Url;

use super::redirect::append_query;

/// A client of the ended session that registered a front-channel logout URI (§2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontchannelClient<'a> {
    /// `frontchannel_logout_uri`: absolute, `https` (or `http` to loopback), no fragment.
    pub logout_uri: &'a str,
    /// `frontchannel_logout_session_required`: the client needs `iss` and `sid`.
    pub session_required: bool,
}

/// What the logged-out page renders: one frame per client, and the `frame-src` sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogoutFrames {
    /// The frames' `src`, in the order of the clients.
    pub frames: Vec<String>,
    /// The origins of those frames, sorted and without duplicates: the page's `frame-src`.
    pub sources: Vec<String>,
}

impl LogoutFrames {
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Front-Channel Logout 1.0 §2–§3: the frame URL for each client of session `sid` at
/// `issuer` — its logout URI with `iss` and `sid` added to the query (keeping any query it
/// has) when it requires the session, else as registered — and the frames' origins.
///
/// A URI whose origin cannot be named in a CSP source (not `http`/`https`, or holding a
/// character that would end the source list) gets no frame: the policy could not let it
/// load, and the provider never widens the policy past what it can spell.
pub fn logout_frames(issuer: &str, sid: &str, clients: &[FrontchannelClient<'_>]) -> LogoutFrames {
    let mut out = LogoutFrames::default();
    for client in clients {
        let Some(source) = frame_source(client.logout_uri) else { continue };
        let frame = if client.session_required {
            append_query(client.logout_uri, &[("iss", issuer), ("sid", sid)])
        } else {
            client.logout_uri.to_owned()
        };
        out.frames.push(frame);
        out.sources.push(source);
    }
    out.sources.sort_unstable();
    out.sources.dedup();
    out
}

/// The CSP source expression (`scheme://host[:port]`) of an `http` or `https` URI.
fn frame_source(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.fragment().is_some() {
        return None;
    }
    let source = url.origin().ascii_serialization();
    source.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\'')).then_some(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://id.example";

    fn client(logout_uri: &str, session_required: bool) -> FrontchannelClient<'_> {
        FrontchannelClient { logout_uri, session_required }
    }

    #[test]
    fn frontchannel_logout_2_session_required_frames_carry_iss_and_sid() {
        let frames = logout_frames(ISSUER, "s-1", &[client("https://app.example/fc", true)]);
        assert_eq!(frames.frames, ["https://app.example/fc?iss=https%3A%2F%2Fid.example&sid=s-1"]);
        assert_eq!(frames.sources, ["https://app.example"]);
    }

    #[test]
    fn frontchannel_logout_2_frames_keep_the_registered_query_and_add_nothing_unless_required() {
        let frames = logout_frames(
            ISSUER,
            "s-1",
            &[client("https://app.example/fc?tenant=a", true), client("https://other.example:8443/logout?x=1", false)],
        );
        assert_eq!(
            frames.frames,
            [
                "https://app.example/fc?tenant=a&iss=https%3A%2F%2Fid.example&sid=s-1",
                "https://other.example:8443/logout?x=1"
            ]
        );
        assert_eq!(frames.sources, ["https://app.example", "https://other.example:8443"]);
    }

    #[test]
    fn frontchannel_logout_3_frame_src_lists_each_origin_once_sorted() {
        let frames = logout_frames(
            ISSUER,
            "s",
            &[
                client("https://b.example/one", false),
                client("http://127.0.0.1:9000/fc", true),
                client("https://b.example/two", false),
            ],
        );
        assert_eq!(frames.frames.len(), 3, "one frame per client");
        assert_eq!(frames.sources, ["http://127.0.0.1:9000", "https://b.example"]);
    }

    #[test]
    fn frontchannel_logout_3_uris_the_policy_cannot_name_get_no_frame() {
        let frames = logout_frames(
            ISSUER,
            "s",
            &[client("javascript:alert(1)", false), client("data:text/html,x", true), client("not a uri", false)],
        );
        assert!(frames.is_empty());
        assert_eq!(frames, LogoutFrames::default());
        assert!(logout_frames(ISSUER, "s", &[]).is_empty(), "no clients, no frames");
    }
}
