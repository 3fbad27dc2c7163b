//! Turning desired configuration (the custom resources) into what the provider reads.
//!
//! [`reconcile`] holds the pure functions that both worlds share: resource (+ its Secret)
//! in, record and actions out. [`decide`] builds the controller's decisions on them (what
//! to write, delete and report per resource, given its peers and what it applied before).
//! [`manifests`] reads the folder of `dev` and `serve --manifests`, [`folder`] applies it
//! (and keeps its signing keys), [`replica`] keeps it applied: live reload, and repair
//! after the store lost its data. [`rotation`] decides the signing-key lifecycle;
//! [`sweep`] what no resource declares any more; [`ending`] when a user change ends their
//! sessions and grants;
//! `crate::kubernetes` runs the controller.

pub mod decide;
pub mod ending;
pub mod folder;
pub mod manifests;
pub mod reconcile;
pub mod replica;
pub mod rotation;
pub mod sweep;
