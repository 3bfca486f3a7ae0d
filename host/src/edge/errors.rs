//! The contract's error shape on HTTP: `{"error": {"code": "ERROR_CODE_…",
//! "message": …, "trace_id": …, "details": […]}}` with a fitting status, and
//! the gRPC status code for each error code.

use hyper::StatusCode;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};

pub fn status_of(code: i32) -> StatusCode {
    match ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified) {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::Unauthorized => StatusCode::FORBIDDEN,
        ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists
        | ErrorCode::FailedPrecondition
        | ErrorCode::InventoryConflict
        | ErrorCode::InsufficientInventory
        | ErrorCode::ConcurrentModification => StatusCode::CONFLICT,
        ErrorCode::IdempotencyConflict => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::IdempotencyRequired => StatusCode::PRECONDITION_REQUIRED,
        ErrorCode::RateLimited | ErrorCode::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ReservationExpired => StatusCode::GONE,
        ErrorCode::PaymentNotApproved => StatusCode::PAYMENT_REQUIRED,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Timeout | ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::UpstreamError => StatusCode::BAD_GATEWAY,
        ErrorCode::Internal | ErrorCode::DataCorruption | ErrorCode::Unspecified => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// `ERROR_CODE_…`, the name of an error code (for metric labels).
pub fn code_name(code: i32) -> &'static str {
    ErrorCode::try_from(code)
        .unwrap_or(ErrorCode::Unspecified)
        .as_str_name()
}

/// The gRPC status code for a contract error code.
pub fn grpc_code_of(code: i32) -> tonic::Code {
    use tonic::Code;
    match ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified) {
        ErrorCode::Unauthenticated => Code::Unauthenticated,
        ErrorCode::Forbidden | ErrorCode::Unauthorized => Code::PermissionDenied,
        ErrorCode::InvalidArgument | ErrorCode::IdempotencyRequired => Code::InvalidArgument,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::InventoryConflict | ErrorCode::ConcurrentModification => Code::Aborted,
        ErrorCode::FailedPrecondition
        | ErrorCode::InsufficientInventory
        | ErrorCode::IdempotencyConflict
        | ErrorCode::ReservationExpired
        | ErrorCode::PaymentNotApproved => Code::FailedPrecondition,
        ErrorCode::RateLimited | ErrorCode::QuotaExceeded => Code::ResourceExhausted,
        ErrorCode::Unavailable | ErrorCode::UpstreamError => Code::Unavailable,
        ErrorCode::Timeout | ErrorCode::UpstreamTimeout => Code::DeadlineExceeded,
        ErrorCode::DataCorruption => Code::DataLoss,
        ErrorCode::Internal | ErrorCode::Unspecified => Code::Internal,
    }
}

pub fn error(code: ErrorCode, message: impl Into<String>, trace_id: &str) -> ProtoError {
    ProtoError {
        code: code as i32,
        message: message.into(),
        trace_id: trace_id.to_string(),
        details: Vec::new(),
    }
}

/// `{"error": …}` as JSON bytes.
pub fn body(codec: &crate::foundations::json::Codec, e: &ProtoError) -> Vec<u8> {
    let rendered = codec
        .message("common.v1.Error")
        .and_then(|d| codec.to_json(&d, &prost::Message::encode_to_vec(e)))
        .unwrap_or_else(|_| b"{}".to_vec());
    let mut out = Vec::with_capacity(rendered.len() + 10);
    out.extend_from_slice(b"{\"error\":");
    out.extend_from_slice(&rendered);
    out.push(b'}');
    out
}
