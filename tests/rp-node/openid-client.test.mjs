// openid-client v6 (panva's certified relying-party library for Node) against `portcullis
// dev` on the fixture manifests, with the library's DEFAULTS: given a client secret it
// authenticates with client_secret_post. The clients used declare no
// tokenEndpointAuthMethod, so Portcullis must accept it; a client that declares
// client_secret_basic must refuse it with the one uniform invalid_client.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import * as client from "openid-client";

const root = process.env.PORTCULLIS_ROOT;
const binary = process.env.PORTCULLIS_BIN ?? `${root}/target/debug/portcullis`;
const REDIRECT_URI = "http://127.0.0.1:9000/callback";
const AUTHENTICATION_FAILED = "client authentication failed";
// The provider runs on plain-http loopback; the library refuses http unless told.
const insecure = { execute: [client.allowInsecureRequests] };

let provider;
let issuer;

before(async () => {
  provider = spawn(binary, [
    "dev", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
    "--manifests", `${root}/tests/fixtures/manifests`,
  ], { stdio: ["ignore", "pipe", "ignore"] });
  for await (const line of createInterface({ input: provider.stdout })) {
    const listening = line.match(/^Portcullis dev listening on \S+ \(issuer (\S+),/);
    if (listening) {
      issuer = listening[1];
      break;
    }
  }
  assert.ok(issuer, "portcullis dev did not start");
});

after(async () => {
  provider.kill("SIGTERM");
  await once(provider, "exit");
});

function discover(clientId, secret) {
  return client.discovery(new URL(issuer), clientId, secret, undefined, insecure);
}

/** The value of a hidden form field on a page. */
function hidden(page, name) {
  const match = page.match(new RegExp(`name="${name}" value="([^"]*)"`));
  assert.ok(match, `no hidden field ${name}`);
  return match[1];
}

/** Walks the login and consent pages as a browser would (cookies kept); returns the callback URL. */
async function signIn(authorizationUrl) {
  const cookies = new Map();
  const send = async (url, form) => {
    const headers = { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") };
    const init = form ? { method: "POST", body: new URLSearchParams(form), headers } : { headers };
    const response = await fetch(url, { ...init, redirect: "manual" });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const at = pair.indexOf("=");
      cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return response;
  };
  const login = await send(authorizationUrl);
  assert.equal(login.status, 200);
  const page = await login.text();
  let response = await send(`${issuer}/login`, {
    interaction: hidden(page, "interaction"), csrf_token: hidden(page, "csrf_token"),
    username: "alice", password: "alice-password",
  });
  if (response.status === 200) {
    const consent = await response.text();
    response = await send(`${issuer}/consent`, {
      interaction: hidden(consent, "interaction"), csrf_token: hidden(consent, "csrf_token"), decision: "allow",
    });
  }
  assert.equal(response.status, 303);
  return new URL(response.headers.get("location"));
}

test("code flow with PKCE, userinfo, refresh and introspection with the default client authentication", async () => {
  const config = await discover("webapp", "webapp-secret");
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: "openid profile email offline_access",
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: "S256",
    state: expectedState,
    nonce: expectedNonce,
  });
  const callback = await signIn(url);
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier, expectedState, expectedNonce });
  const claims = tokens.claims();
  assert.equal(claims.iss, issuer);
  assert.equal(claims.aud, "webapp");
  assert.equal(claims.preferred_username, "alice");

  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(userinfo.email, "alice@example.com");

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, "rotated");
  assert.equal(refreshed.claims().sub, claims.sub);

  const introspected = await client.tokenIntrospection(config, refreshed.access_token);
  assert.equal(introspected.active, true);
  assert.equal(introspected.sub, claims.sub);
});

test("client_credentials and introspection with the default client authentication", async () => {
  const config = await discover("m2m", "m2m-secret");
  const tokens = await client.clientCredentialsGrant(config, { scope: "reports:read" });
  assert.equal(tokens.token_type.toLowerCase(), "bearer");
  assert.equal(tokens.scope, "reports:read");
  const introspected = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(introspected.active, true);
  assert.equal(introspected.client_id, "m2m");
});

test("a client that declares client_secret_basic refuses post with the uniform invalid_client", async () => {
  const config = await discover("reports-api", "reports-api-secret");
  const refused = await client.clientCredentialsGrant(config).then(() => null, (error) => error);
  assert.ok(refused, "client_secret_post is refused");
  // A 401 comes with a WWW-Authenticate challenge, which the library reports as such; the
  // RFC 6749 §5.2 body is on the response.
  assert.equal(refused.status, 401);
  assert.deepEqual(await refused.response.json(), { error: "invalid_client", error_description: AUTHENTICATION_FAILED });
  const basic = await discover("reports-api", "reports-api-secret");
  const explicit = new client.Configuration(basic.serverMetadata(), "reports-api", "reports-api-secret", client.ClientSecretBasic());
  client.allowInsecureRequests(explicit);
  const tokens = await client.clientCredentialsGrant(explicit);
  assert.ok(tokens.access_token, "and accepts the method it declared");
});
