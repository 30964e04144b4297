//! The Supervisor actor (to be written).
use actix::prelude::*;

/// Owns the dependency graph.
pub struct Supervisor;

impl Actor for Supervisor {
    type Context = Context<Self>;
}
