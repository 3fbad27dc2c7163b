//! Integration tests over real HTTP against an in-process `dev` provider, grouped by
//! specification.

mod discovery;
mod harness;
mod introspection;
mod malformed;
mod revocation;
mod token;
