//! The benchmark's gRPC contract, written by hand (no `protoc` on the
//! machine): one unary method, `weft.bench.Echo/Unary`, whose request and
//! response carry a small payload, the gRPC analogue of the tiny-body HTTP
//! workload.
//!
//! ```text
//! syntax = "proto3";
//! package weft.bench;
//! message EchoRequest { bytes payload = 1; }
//! message EchoReply   { bytes payload = 1; }
//! service Echo { rpc Unary(EchoRequest) returns (EchoReply); }
//! ```

/// Path of the one benchmarked method.
pub const UNARY_PATH: &str = "/weft.bench.Echo/Unary";

/// Request of `Echo/Unary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// Bytes echoed back by the server.
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
}

/// Response of `Echo/Unary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    /// The request's payload.
    #[prost(bytes = "vec", tag = "1")]
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn round_trips() {
        let request = EchoRequest {
            payload: b"ping".to_vec(),
        };
        let bytes = request.encode_to_vec();
        assert_eq!(bytes, vec![0x0a, 4, b'p', b'i', b'n', b'g']);
        assert_eq!(EchoRequest::decode(bytes.as_slice()).unwrap(), request);
    }
}
