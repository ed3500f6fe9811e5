//! The JSON API (stub).
use super::conn::Peer;
use super::console::Console;
use rouille::{Request, Response};
use std::sync::Arc;

pub struct Api {
    pub console: Arc<Console>,
}

impl Api {
    pub fn handle(&self, _req: &Request, _peer: &Peer) -> Response {
        Response::empty_404()
    }
}
