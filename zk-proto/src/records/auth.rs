//! Authentication records: [`AuthPacket`] (`auth`, xid -4), the SASL exchange
//! ([`GetSaslRequest`] / [`SetSaslResponse`]) and `whoAmI` ([`WhoAmIResponse`],
//! [`ClientInfo`]).

use bytes::Bytes;

jute_record! {
    /// Request body of `auth` (100), sent with xid -4.
    pub struct AuthPacket {
        /// Always 0 from real clients.
        pub auth_type: i32,
        /// The scheme, e.g. `digest`.
        pub scheme: String,
        /// Scheme-specific credentials, e.g. `user:password` for `digest`.
        pub auth: Bytes,
    }
}

impl AuthPacket {
    /// An auth packet as clients send it (type 0).
    pub fn new(scheme: impl Into<String>, auth: impl Into<Bytes>) -> Self {
        AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: auth.into(),
        }
    }
}

jute_record! {
    /// Request body of `sasl` (102): the client's SASL token.
    pub struct GetSaslRequest {
        /// The token; `None` is a null buffer.
        pub token: Option<Bytes>,
    }
}

jute_record! {
    /// Response body of `sasl` (102): the server's SASL token.
    pub struct SetSaslResponse {
        /// The token; `None` is a null buffer (e.g. when the exchange is complete).
        pub token: Option<Bytes>,
    }
}

jute_record! {
    /// One identity of a connection, in a [`WhoAmIResponse`].
    pub struct ClientInfo {
        /// The auth scheme, e.g. `ip`, `digest`, `sasl`.
        pub auth_scheme: String,
        /// The user within the scheme.
        pub user: String,
    }
}

jute_record! {
    /// Response body of `whoAmI` (107); the request has no body.
    pub struct WhoAmIResponse {
        /// Every identity the connection is authenticated as.
        pub client_info: Vec<ClientInfo>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{hex, roundtrip};

    #[test]
    fn auth_packet_bytes() {
        let auth = AuthPacket::new("digest", Bytes::from_static(b"u:p"));
        let expected = hex("00000000 00000006 646967657374 00000003 753a70");
        assert_eq!(&roundtrip(&auth)[..], &expected[..]);
    }

    #[test]
    fn sasl_and_whoami_roundtrip() {
        roundtrip(&GetSaslRequest {
            token: Some(Bytes::from_static(b"tok")),
        });
        roundtrip(&SetSaslResponse { token: None });
        roundtrip(&WhoAmIResponse {
            client_info: vec![
                ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into(),
                },
                ClientInfo {
                    auth_scheme: "digest".into(),
                    user: "u".into(),
                },
            ],
        });
    }
}
