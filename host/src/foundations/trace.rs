//! W3C trace ids: made at the edge, carried by every call, delivery and
//! webhook of a request, and shown in logs and error bodies.
//!
//! It sits on the ground floor because the edge (which reads `traceparent`),
//! the runtime and the dispatcher (which start traces of their own) and the
//! webhook capability (which sends `traceparent` on) all need the same rule.

/// A fresh W3C trace id (32 hex digits).
pub fn new_trace_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A `traceparent` header for an outgoing request of this trace.
pub fn traceparent(trace_id: &str) -> String {
    format!(
        "00-{trace_id}-{}-01",
        hex::encode(rand::random::<[u8; 8]>())
    )
}

/// The trace id of an incoming `traceparent` header, if it is well formed.
pub fn from_traceparent(header: &str) -> Option<String> {
    let parts: Vec<&str> = header.split('-').collect();
    (parts.len() == 4 && parts[1].len() == 32 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| parts[1].to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_carries_its_trace_id_back() {
        let id = new_trace_id();
        assert_eq!(from_traceparent(&traceparent(&id)).as_deref(), Some(&*id));
        assert_eq!(from_traceparent("00-xyz-01-01"), None);
        assert_eq!(from_traceparent("garbage"), None);
    }
}
