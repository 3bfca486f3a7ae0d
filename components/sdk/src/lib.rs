//! The guest side of tacos: what every component links against.
//!
//! It generates the `tacos:platform` imports once (world `imports`) and wraps
//! them in small typed helpers over the protobuf contracts, so a component reads
//! like business logic: decode a request, read and transact kv records, call
//! another service, return a response or a `common.v1.Error`.
//!
//! A component generates its own exports with `wit_bindgen::generate!` for world
//! `service` or `consumer`, mapping the imports to this crate's modules with
//! `with:` (see any crate under `components/`).

pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "tacos:platform/imports",
    });
}

/// Generate a component's exports for world `service` or `consumer`, reusing
/// this crate's imports. `wit` is the path of the `wit/` folder relative to the
/// component's `Cargo.toml`.
///
/// ```ignore
/// tacos_guest::component_bindings!("../../wit", "tacos:platform/service");
/// ```
#[macro_export]
macro_rules! component_bindings {
    ($wit:literal, $world:literal) => {
        mod bindings {
            wit_bindgen::generate!({
                path: $wit,
                world: $world,
                with: {
                    "tacos:platform/kv@0.1.0": tacos_guest::bindings::tacos::platform::kv,
                    "tacos:platform/queue@0.1.0": tacos_guest::bindings::tacos::platform::queue,
                    "tacos:platform/clock@0.1.0": tacos_guest::bindings::tacos::platform::clock,
                    "tacos:platform/rpc@0.1.0": tacos_guest::bindings::tacos::platform::rpc,
                    "tacos:platform/config@0.1.0": tacos_guest::bindings::tacos::platform::config,
                    "tacos:platform/log@0.1.0": tacos_guest::bindings::tacos::platform::log,
                    "tacos:platform/webhook@0.1.0": tacos_guest::bindings::tacos::platform::webhook,
                    "tacos:platform/token@0.1.0": tacos_guest::bindings::tacos::platform::token,
                },
            });
        }
    };
}

pub mod idempotency;
pub mod kv;
pub mod token;

pub use bindings::tacos::platform::{clock, config, log, queue, rpc, webhook};
pub use prost::Message;
pub use tacos_proto as proto;

use proto::common::v1::{Error as ProtoError, ErrorCode};

/// The reply of a service call: an encoded response or an encoded `common.v1.Error`.
pub type Reply = Result<Vec<u8>, Vec<u8>>;

/// A failed call, as the contracts describe it (`common.v1.Error`).
#[derive(Debug, Clone)]
pub struct ServiceError(pub ProtoError);

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError(ProtoError {
            code: code as i32,
            message: message.into(),
            ..Default::default()
        })
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// INVALID_ARGUMENT naming the offending field.
    pub fn invalid_field(field: &str, reason: &str) -> Self {
        let mut e = Self::invalid(format!("{field}: {reason}"));
        e.0.details.push(proto::common::v1::ErrorDetail {
            field: field.to_string(),
            reason: reason.to_string(),
            value: String::new(),
        });
        e
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn code(&self) -> ErrorCode {
        ErrorCode::try_from(self.0.code).unwrap_or(ErrorCode::Unspecified)
    }

    /// Decode an error returned by the host or another service.
    pub fn decode(bytes: &[u8]) -> Self {
        match ProtoError::decode(bytes) {
            Ok(e) => ServiceError(e),
            Err(_) => Self::internal("undecodable error from callee"),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        self.0.encode_to_vec()
    }
}

impl From<prost::DecodeError> for ServiceError {
    fn from(e: prost::DecodeError) -> Self {
        Self::invalid(format!("malformed request: {e}"))
    }
}

pub type Result<T, E = ServiceError> = core::result::Result<T, E>;

/// Turn a handler's result into the wire reply.
pub fn reply<M: Message>(result: Result<M>) -> Reply {
    result.map(|m| m.encode_to_vec()).map_err(|e| e.encode())
}

/// One RPC: decode the request, run `handler`, encode its result.
pub fn handle<Req: Message + Default, Resp: Message>(
    request: &[u8],
    handler: impl FnOnce(Req) -> Result<Resp>,
) -> Reply {
    reply(decode(request).and_then(handler))
}

/// Decode a request message.
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M> {
    Ok(M::decode(bytes)?)
}

/// Call another service through the host (`rpc` capability).
pub fn call<Req: Message, Resp: Message + Default>(
    service: &str,
    method: &str,
    request: &Req,
) -> Result<Resp> {
    match rpc::call(service, method, &request.encode_to_vec()) {
        Ok(bytes) => Resp::decode(bytes.as_slice())
            .map_err(|e| ServiceError::internal(format!("{service}/{method}: bad response: {e}"))),
        Err(bytes) => Err(ServiceError::decode(bytes.as_slice())),
    }
}

/// Milliseconds since the Unix epoch, by the host clock.
pub fn now_ms() -> i64 {
    clock::now_ms() as i64
}

/// A config value, or `default` if unset or unparsable.
pub fn config_or<T: core::str::FromStr>(key: &str, default: T) -> T {
    config::get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The self-check method ([`proto::SELF_CHECK_METHOD`]); answer it with
/// `reply(self_check())`, where `self_check` checks the component's config
/// with [`check_config`].
pub use proto::SELF_CHECK_METHOD as SELF_CHECK;

/// For a self-check: config `key`, if set, parses as `T` and passes `valid`.
pub fn check_config<T: core::str::FromStr>(
    key: &str,
    valid: impl Fn(&T) -> bool,
    expected: &str,
) -> Result<()> {
    match config::get(key) {
        None => Ok(()),
        Some(v) => match v.parse::<T>() {
            Ok(parsed) if valid(&parsed) => Ok(()),
            _ => Err(ServiceError::new(
                ErrorCode::FailedPrecondition,
                format!("config `{key}` is `{v}`; expected {expected}"),
            )),
        },
    }
}

/// Log at info level with fields.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    emit(log::Level::Info, message, fields)
}

/// Log at warn level with fields.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    emit(log::Level::Warn, message, fields)
}

fn emit(level: log::Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    log::log(level, message, &fields)
}

/// A fresh random id with a prefix, e.g. `res_5f0c…` (wasi:random underneath).
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    fill_random(&mut bytes);
    let mut s = String::with_capacity(prefix.len() + 25);
    s.push_str(prefix);
    s.push('_');
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Uniform random number in `0..n` (n > 0).
pub fn random_below(n: u64) -> u64 {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    u64::from_le_bytes(bytes) % n.max(1)
}

fn fill_random(buf: &mut [u8]) {
    // wasi:random/random; the host never fails it.
    if getrandom::fill(buf).is_err() {
        buf.iter_mut().for_each(|b| *b = 0);
    }
}

/// Check a required string field.
pub fn require<'a>(field: &str, value: &'a str) -> Result<&'a str> {
    if value.trim().is_empty() {
        Err(ServiceError::invalid_field(field, "is required"))
    } else if value.len() > 256 {
        Err(ServiceError::invalid_field(
            field,
            "is longer than 256 bytes",
        ))
    } else {
        Ok(value)
    }
}
