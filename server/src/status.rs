//! etcd's errors as gRPC statuses: the same code and the same message, which clients
//! match on.

use axum::http::{HeaderMap, Response};
use etcdlite::{Code, Error};
use http_body_util::BodyExt;
use tonic::body::Body;
use tonic::Status;

/// The status etcd sends for `error`: its code (gRPC's numbers are the library's) and its
/// message.
pub fn to_status(error: Error) -> Status {
    Status::new(grpc_code(error.code()), error.to_string())
}

/// The tonic code of a library code.
pub fn grpc_code(code: Code) -> tonic::Code {
    tonic::Code::from_i32(code as i32)
}

/// What etcd's gRPC server answers a message larger than it accepts: ResourceExhausted
/// "grpc: received message larger than max (size vs. max)".
pub fn too_large(size: usize, max: usize) -> Status {
    Status::resource_exhausted(format!("grpc: received message larger than max ({size} vs. {max})"))
}

/// Rewrites tonic's status for an oversized request (OutOfRange "Error, decoded message
/// length too large: found N bytes, the limit is: M bytes") into etcd's: in the headers of
/// a trailers-only answer (a call that failed before its handler ran) and, when
/// `in_trailers`, in the trailers of a stream.
pub fn etcd_size_errors(mut response: Response<Body>, in_trailers: bool) -> Response<Body> {
    rewrite_too_large(response.headers_mut());
    if !in_trailers {
        return response;
    }
    response.map(|body| {
        Body::new(body.map_frame(|frame| match frame.into_trailers() {
            Ok(mut trailers) => {
                rewrite_too_large(&mut trailers);
                http_body::Frame::trailers(trailers)
            }
            Err(frame) => frame,
        }))
    })
}

/// grpc-go's answer to a call of `path` that no service method serves: the path is split
/// at its last `/` into service and method (`/etcdserverpb.KV/a/b` is method `b` of service
/// `etcdserverpb.KV/a`), and the answer says which of them is unknown.
pub fn unknown_call(path: &str) -> Status {
    let Some((service, method)) = path.strip_prefix('/').unwrap_or(path).rsplit_once('/') else {
        return Status::unimplemented(format!("malformed method name: {path:?}"));
    };
    if service.contains('/') || !crate::dispatch::is_service(service) {
        return Status::unimplemented(format!("unknown service {service}"));
    }
    Status::unimplemented(format!("unknown method {method} for service {service}"))
}

/// Gives tonic's answer to a method its service does not have (Unimplemented with no
/// message) grpc-go's message for `path` ([`unknown_call`]).
pub fn name_unknown_method(mut response: Response<Body>, path: &str) -> Response<Body> {
    let headers = response.headers();
    if headers.get("grpc-status").is_none_or(|code| code != "12") || headers.contains_key("grpc-message") {
        return response;
    }
    // Only fails on a message that is not a valid header value; an h2 path always is one.
    let _ = unknown_call(path).add_header(response.headers_mut());
    response
}

fn rewrite_too_large(headers: &mut HeaderMap) {
    // OutOfRange is 11; most answers are 0 or carry no status, and skip the parse.
    if headers.get("grpc-status").is_none_or(|code| code != "11") {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else { return };
    if status.code() != tonic::Code::OutOfRange {
        return;
    }
    let Some((size, max)) = tonic_too_large(status.message()) else { return };
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    // Only fails on a message that is not a valid header value; this one is ASCII.
    let _ = too_large(size, max).add_header(headers);
}

/// The sizes in tonic's message for a decoded message over its limit.
fn tonic_too_large(message: &str) -> Option<(usize, usize)> {
    let rest = message.strip_prefix("Error, decoded message length too large: found ")?;
    let (size, rest) = rest.split_once(" bytes, the limit is: ")?;
    let max = rest.strip_suffix(" bytes")?;
    Some((size.parse().ok()?, max.parse().ok()?))
}

/// Unavailable "etcdserver: server stopped": a stream cut short by shutdown.
pub fn server_stopped() -> Status {
    Status::unavailable("etcdserver: server stopped")
}

/// Ends a response stream with "server stopped", waiting a moment for room in `out` (a
/// client that reads nothing then sees the stream just end).
pub async fn send_server_stopped<T>(out: &tokio::sync::mpsc::Sender<Result<T, Status>>) {
    let _ =
        tokio::time::timeout(std::time::Duration::from_millis(100), out.send(Err(server_stopped()))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_are_etcds() {
        let s = to_status(Error::Compacted);
        assert_eq!(s.code(), tonic::Code::OutOfRange);
        assert_eq!(s.message(), "etcdserver: mvcc: required revision has been compacted");
        let s = to_status(Error::LeaseNotFound);
        assert_eq!(s.code(), tonic::Code::NotFound);
        assert_eq!(s.message(), "etcdserver: requested lease not found");
        let s = to_status(Error::LeaseExists);
        assert_eq!(s.code(), tonic::Code::FailedPrecondition);
        let s = to_status(Error::EmptyKey);
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert_eq!(s.message(), "etcdserver: key is not provided");
        assert_eq!(to_status(Error::WatchCanceled).code(), tonic::Code::Cancelled);
        let s = to_status(Error::NoSpace);
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert_eq!(s.message(), "etcdserver: mvcc: database space exceeded");
    }

    #[test]
    fn tonics_size_error_becomes_etcds_in_headers_and_leaves_others_alone() {
        let mut headers = HeaderMap::new();
        Status::out_of_range(
            "Error, decoded message length too large: found 3145739 bytes, the limit is: 2097152 bytes",
        )
        .add_header(&mut headers)
        .unwrap();
        rewrite_too_large(&mut headers);
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), "grpc: received message larger than max (3145739 vs. 2097152)");

        let mut headers = HeaderMap::new();
        to_status(Error::Compacted).add_header(&mut headers).unwrap();
        rewrite_too_large(&mut headers);
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), tonic::Code::OutOfRange);
        assert_eq!(status.message(), "etcdserver: mvcc: required revision has been compacted");
    }
}
