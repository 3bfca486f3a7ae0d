//! proto3 JSON ↔ protobuf bytes, driven by the contracts' descriptors.
//!
//! The edge and the webhook capability translate any message by name, with no
//! per-message code: JSON names are the proto field names (snake_case, as the
//! guide's TypeScript types), enums by full name, unknown fields refused,
//! 64-bit integers as numbers, default values written out so clients always see
//! every field.

use anyhow::{Context, anyhow};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions, Value,
};

/// Why [`Codec::bind`] refused a request.
#[derive(Debug, PartialEq)]
pub enum BindError {
    Undecodable(String),
    /// The request's `field` holds `given`, not the bound value.
    Mismatch {
        field: String,
        given: String,
    },
}

#[derive(Clone)]
pub struct Codec {
    pool: DescriptorPool,
}

impl Codec {
    pub fn new() -> anyhow::Result<Codec> {
        let pool = DescriptorPool::decode(tacos_proto::FILE_DESCRIPTOR_SET)
            .context("decoding the contract descriptors")?;
        Ok(Codec { pool })
    }

    pub fn message(&self, name: &str) -> anyhow::Result<MessageDescriptor> {
        self.pool
            .get_message_by_name(name)
            .ok_or_else(|| anyhow!("unknown message type {name}"))
    }

    pub fn service(&self, name: &str) -> Option<prost_reflect::ServiceDescriptor> {
        self.pool.get_service_by_name(name)
    }

    /// Every service of the contracts.
    pub fn services(&self) -> impl Iterator<Item = prost_reflect::ServiceDescriptor> + '_ {
        self.pool.services()
    }

    /// Parse JSON into a message (unknown fields refused), then set `extra`
    /// string fields (path and query parameters; they win over the body).
    pub fn from_json(
        &self,
        desc: &MessageDescriptor,
        body: &[u8],
        extra: &[(&str, String)],
    ) -> Result<Vec<u8>, String> {
        let mut msg = if body.iter().all(u8::is_ascii_whitespace) {
            DynamicMessage::new(desc.clone())
        } else {
            let mut de = serde_json::Deserializer::from_slice(body);
            let msg = DynamicMessage::deserialize_with_options(
                desc.clone(),
                &mut de,
                &DeserializeOptions::new().deny_unknown_fields(true),
            )
            .map_err(|e| format!("invalid JSON for {}: {e}", desc.full_name()))?;
            de.end().map_err(|e| format!("invalid JSON: {e}"))?;
            msg
        };
        for (field, value) in extra {
            set_path(&mut msg, field, value).map_err(|e| format!("{field}: {e}"))?;
        }
        Ok(msg.encode_to_vec())
    }

    /// Give string fields of an encoded request values the edge vouches for
    /// (the authenticated `user_id`, the `idempotency_key` of the header):
    /// each is set when empty and refused when it holds something else.
    /// Fields the message does not have are skipped; with nothing to set the
    /// bytes pass unchanged.
    pub fn bind(
        &self,
        desc: &MessageDescriptor,
        bytes: Vec<u8>,
        values: &[(&str, &str)],
    ) -> Result<Vec<u8>, BindError> {
        let fields: Vec<_> = values
            .iter()
            .filter_map(|(name, v)| Some((desc.get_field_by_name(name)?, *v)))
            .collect();
        if fields.is_empty() {
            return Ok(bytes);
        }
        let mut msg = DynamicMessage::decode(desc.clone(), bytes.as_slice())
            .map_err(|e| BindError::Undecodable(format!("decoding {}: {e}", desc.full_name())))?;
        let mut changed = false;
        for (field, value) in fields {
            match msg.get_field(&field).as_str() {
                Some("") | None => {
                    msg.set_field(&field, Value::String(value.to_string()));
                    changed = true;
                }
                Some(given) if given == value => {}
                Some(given) => {
                    return Err(BindError::Mismatch {
                        field: field.name().to_string(),
                        given: given.to_string(),
                    });
                }
            }
        }
        Ok(if changed { msg.encode_to_vec() } else { bytes })
    }

    /// Render encoded `bytes` of message `desc` as JSON.
    pub fn to_json(&self, desc: &MessageDescriptor, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
        let msg = DynamicMessage::decode(desc.clone(), bytes)
            .with_context(|| format!("decoding {}", desc.full_name()))?;
        let mut out = Vec::with_capacity(bytes.len() * 2 + 16);
        let mut ser = serde_json::Serializer::new(&mut out);
        let options = SerializeOptions::new()
            .use_proto_field_name(true)
            .stringify_64_bit_integers(false)
            .skip_default_fields(false);
        msg.serialize_with_options(&mut ser, &options)
            .with_context(|| format!("rendering {} as JSON", desc.full_name()))?;
        Ok(out)
    }
}

/// Set the field at `path` (`a` or `a.b` into a message field) from the
/// text of a path or query parameter: strings as they are, integers and
/// booleans parsed.
fn set_path(msg: &mut DynamicMessage, path: &str, text: &str) -> Result<(), String> {
    let (name, rest) = match path.split_once('.') {
        Some((name, rest)) => (name, Some(rest)),
        None => (path, None),
    };
    let desc = prost_reflect::ReflectMessage::descriptor(msg);
    let f = desc
        .get_field_by_name(name)
        .ok_or_else(|| format!("{} has no field {name}", desc.full_name()))?;
    if let Some(rest) = rest {
        return match msg.get_field_mut(&f) {
            Value::Message(inner) => set_path(inner, rest, text),
            _ => Err(format!("{name} is not a message")),
        };
    }
    let bad = || format!("`{text}` is not a {:?}", f.kind());
    let value = match f.kind() {
        prost_reflect::Kind::String => Value::String(text.to_string()),
        prost_reflect::Kind::Int32
        | prost_reflect::Kind::Sint32
        | prost_reflect::Kind::Sfixed32 => Value::I32(text.parse().map_err(|_| bad())?),
        prost_reflect::Kind::Int64
        | prost_reflect::Kind::Sint64
        | prost_reflect::Kind::Sfixed64 => Value::I64(text.parse().map_err(|_| bad())?),
        prost_reflect::Kind::Bool => Value::Bool(text.parse().map_err(|_| bad())?),
        other => return Err(format!("cannot be set from a URL ({other:?})")),
    };
    msg.try_set_field(&f, value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tacos_proto::gateway::v1::{JoinQueueResponse, QueueStatus};

    #[test]
    fn snake_case_full_enum_names_and_unknown_fields() {
        let c = Codec::new().unwrap();
        let d = c.message("gateway.v1.JoinQueueResponse").unwrap();
        let bytes = JoinQueueResponse {
            waiting_token: "t".into(),
            status: QueueStatus::Waiting as i32,
            ..Default::default()
        }
        .encode_to_vec();
        let json: serde_json::Value =
            serde_json::from_slice(&c.to_json(&d, &bytes).unwrap()).unwrap();
        assert_eq!(json["waiting_token"], "t");
        assert_eq!(json["status"], "QUEUE_STATUS_WAITING");
        assert_eq!(json["position_hint"], 0);
        assert!(json.get("error").is_none(), "{json}");

        let req = c.message("gateway.v1.JoinQueueRequest").unwrap();
        assert!(
            c.from_json(&req, br#"{"event_id":"e","user_id":"u"}"#, &[])
                .is_ok()
        );
        assert!(
            c.from_json(&req, br#"{"event_id":"e","bogus":1}"#, &[])
                .is_err()
        );
        assert!(c.from_json(&req, br#"{"event_id":5}"#, &[]).is_err());
        assert!(
            c.from_json(&req, br#"{"event_id":"e"} trailing"#, &[])
                .is_err()
        );
    }

    #[test]
    fn bind_fills_empty_fields_and_refuses_others() {
        use tacos_proto::reservation::v1::GetReservationRequest;
        let c = Codec::new().unwrap();
        let d = c.message("reservation.v1.GetReservationRequest").unwrap();
        let empty = GetReservationRequest {
            reservation_id: "r".into(),
            user_id: String::new(),
        }
        .encode_to_vec();
        let bound = c
            .bind(&d, empty, &[("user_id", "ann"), ("no_such", "x")])
            .unwrap();
        let got = GetReservationRequest::decode(bound.as_slice()).unwrap();
        assert_eq!(
            (got.reservation_id.as_str(), got.user_id.as_str()),
            ("r", "ann")
        );
        // Already right: the same bytes back.
        assert_eq!(
            c.bind(&d, bound.clone(), &[("user_id", "ann")]).unwrap(),
            bound
        );
        assert_eq!(
            c.bind(&d, bound, &[("user_id", "bob")]),
            Err(BindError::Mismatch {
                field: "user_id".into(),
                given: "ann".into()
            })
        );
        assert!(matches!(
            c.bind(&d, vec![0xff, 0xff], &[("user_id", "ann")]),
            Err(BindError::Undecodable(_))
        ));
    }
}
