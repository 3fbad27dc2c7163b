//! The controller and `serve --kubernetes`, with the real `kube::Client`, watchers and
//! `Controller`, talking HTTP to the in-process fake API server
//! (`support/fake_apiserver.rs`) and writing to a real `redis-server`. One file per kind,
//! plus the convergence scenarios (lost data, sweeps, resyncs that write nothing) and the
//! process-level ones (leader election, the binaries).

#[path = "../support/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "../support/redis_server.rs"]
mod redis_server;

mod clients;
mod connectors;
mod convergence;
mod harness;
mod keys;
mod processes;
mod users;
