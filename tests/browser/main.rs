//! Real-browser end-to-end tests: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) signs in, consents, signs out and meets errors on an in-process
//! provider, under the pages' strict Content-Security-Policy, with the keyboard alone.
//! Every page is checked for console errors, CSP violations and accessibility (axe-core),
//! and photographed under `target/screenshots`. Without Chromium the tests fail, saying
//! what to install; they never skip.

#[path = "../support/certificates.rs"]
mod certificates;
mod chromium;
mod device;
mod federation;
#[path = "../support/fixtures.rs"]
mod fixtures;
mod flows;
// Shared with the provider tests; this target uses only part of it.
#[allow(dead_code)]
#[path = "../provider/harness.rs"]
mod harness;
mod parties;
// Shared with the provider tests; this target uses only part of it.
#[allow(dead_code)]
#[path = "../support/slapd.rs"]
mod slapd;
mod spa;
