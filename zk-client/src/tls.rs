//! TLS connections (cargo feature `tls`): [`TlsConfig`] and the connector that uses it.
//!
//! Apache ZooKeeper serves TLS on its `secureClientPort` (with the Netty connection factory).
//! [`ClientBuilder::tls`](crate::ClientBuilder::tls) makes every connection of the client a
//! TLS connection, the read-only probes included. The TLS stack is
//! [rustls](https://docs.rs/rustls) with the *ring* crypto provider: memory-safe, no OpenSSL
//! needed on the machine. [`rustls`] is re-exported so a hand-built
//! [`ClientConfig`](rustls::ClientConfig) always matches the version this crate uses.
//!
//! The server certificate is checked against the host name *as written in the connect
//! string* (an IP literal is checked against the certificate's IP addresses), like the Java
//! client's `zookeeper.ssl.hostnameVerification=true`.
//!
//! ```no_run
//! use zk_client::{Client, TlsConfig};
//!
//! # async fn demo() -> Result<(), zk_client::Error> {
//! let tls = TlsConfig::builder()
//!     .ca_pem_file("/etc/zookeeper/ca.pem")?
//!     // Mutual TLS, for servers with `ssl.clientAuth=need`:
//!     .client_identity_pem_files("/etc/app/client.pem", "/etc/app/client-key.pem")?
//!     .build()?;
//! let client = Client::builder("zk1.example.com:2281,zk2.example.com:2281")
//!     .tls(tls)
//!     .connect()
//!     .await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::error::Error;
use crate::transport::{Connector, Endpoint, Stream, TlsFailure, tcp_connect};

/// How the client speaks TLS: a rustls [`ClientConfig`] (trust roots, client certificate,
/// verification). Cheap to clone.
///
/// Build one from PEM files with [`TlsConfig::builder`], or wrap any `ClientConfig` with
/// [`TlsConfig::new`] (ALPN, session resumption, a custom verifier, ...).
///
/// ```
/// use std::sync::Arc;
/// use zk_client::TlsConfig;
/// use zk_client::rustls::{ClientConfig, RootCertStore, crypto::ring};
///
/// // Anything rustls offers; here the roots would come from your own store.
/// let roots = RootCertStore::empty();
/// let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
///     .with_safe_default_protocol_versions()
///     .map_err(|e| e.to_string())?
///     .with_root_certificates(roots)
///     .with_no_client_auth();
/// let tls = TlsConfig::new(Arc::new(config));
/// # Ok::<(), String>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field(
                "client_auth",
                &self.client.client_auth_cert_resolver.has_certs(),
            )
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Wraps a rustls client configuration as it is.
    pub fn new(client: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig { client }
    }

    /// A builder reading trust roots and an optional client identity from PEM.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder {
            roots: RootCertStore::empty(),
            identity: None,
            verify_hostname: true,
        }
    }

    /// Trusts the CA certificates of a PEM file, verifies host names, and sends no client
    /// certificate: the common case, as a one-liner.
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] if the file cannot be read or holds no usable certificate.
    pub fn from_ca_pem_file(path: impl AsRef<Path>) -> Result<TlsConfig, Error> {
        TlsConfig::builder().ca_pem_file(path)?.build()
    }

    /// The rustls configuration.
    pub fn client_config(&self) -> &Arc<ClientConfig> {
        &self.client
    }
}

/// Builds a [`TlsConfig`] from PEM: trust roots (required), a client certificate chain and
/// key (for servers that require client certificates), and whether to verify host names.
///
/// ```
/// use zk_client::TlsConfig;
///
/// // An empty PEM holds no certificate: a clear error, not a config that trusts nothing.
/// let error = TlsConfig::builder().ca_pem(b"").unwrap_err();
/// assert!(error.to_string().contains("no certificate"));
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct TlsConfigBuilder {
    roots: RootCertStore,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    verify_hostname: bool,
}

impl fmt::Debug for TlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfigBuilder")
            .field("roots", &self.roots.len())
            .field("client_identity", &self.identity.is_some())
            .field("verify_hostname", &self.verify_hostname)
            .finish()
    }
}

fn tls_error(what: impl fmt::Display) -> Error {
    Error::Tls(what.to_string())
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| tls_error(format!("cannot read {what} {}: {e}", path.display())))
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("bad PEM in {what}: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(format!("no certificate found in {what}")));
    }
    Ok(certs)
}

impl TlsConfigBuilder {
    /// Trusts every CA certificate of a PEM document (one or more `CERTIFICATE` blocks).
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] if the PEM is malformed or holds no certificate, or a certificate is
    /// not a usable trust anchor.
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        for cert in parse_certs(pem, "the CA PEM")? {
            self.roots
                .add(cert)
                .map_err(|e| tls_error(format!("unusable CA certificate: {e}")))?;
        }
        Ok(self)
    }

    /// [`ca_pem`](Self::ca_pem) from a file.
    ///
    /// # Errors
    ///
    /// As [`ca_pem`](Self::ca_pem), or the file cannot be read.
    pub fn ca_pem_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let pem = read_file(path, "CA file")?;
        self.ca_pem(&pem).map_err(|e| match e {
            Error::Tls(m) => tls_error(format!("{m} ({})", path.display())),
            other => other,
        })
    }

    /// The client certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or
    /// SEC1), sent to servers that ask for one (mutual TLS, `ssl.clientAuth=need`). With
    /// Apache's `X509AuthenticationProvider` the session is then authenticated as scheme
    /// `x509` with the certificate's subject DN as id.
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] if either PEM is malformed, or holds no certificate or no key.
    pub fn client_identity_pem(
        mut self,
        cert_chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, Error> {
        let chain = parse_certs(cert_chain_pem, "the client certificate PEM")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| tls_error(format!("no usable private key in the client key PEM: {e}")))?;
        self.identity = Some((chain, key));
        Ok(self)
    }

    /// [`client_identity_pem`](Self::client_identity_pem) from files (they may be the same
    /// file).
    ///
    /// # Errors
    ///
    /// As [`client_identity_pem`](Self::client_identity_pem), or a file cannot be read.
    pub fn client_identity_pem_files(
        self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        let chain = read_file(cert_chain.as_ref(), "client certificate file")?;
        let key = read_file(key.as_ref(), "client key file")?;
        self.client_identity_pem(&chain, &key)
    }

    /// Whether the server certificate must be valid for the host name of the connect string
    /// (default: true). Like the Java client's `zookeeper.ssl.hostnameVerification=false`,
    /// `false` still requires a certificate chain to a trusted root (and a valid handshake
    /// signature), but accepts it whatever names it carries.
    ///
    /// **Risk:** any certificate the trusted CAs issued, for any host, is then accepted for
    /// every server. With a private CA that only signs the ensemble's certificates this is
    /// what ensembles addressed by IP or by names missing from their certificates need; with
    /// a CA that signs certificates for other services, one of those services (or whoever
    /// stole its key) can impersonate the ensemble. Prefer certificates carrying the names
    /// (or IPs) clients use.
    pub fn verify_hostname(mut self, verify: bool) -> Self {
        self.verify_hostname = verify;
        self
    }

    /// The configuration: TLS 1.2 and 1.3 with the ring provider.
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] if no CA certificate was given, or rustls rejects the client key.
    pub fn build(self) -> Result<TlsConfig, Error> {
        if self.roots.is_empty() {
            return Err(tls_error(
                "no CA certificate to trust: call ca_pem or ca_pem_file",
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(self.roots);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| tls_error(format!("cannot build the certificate verifier: {e}")))?;
        let versions = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(format!("no usable TLS version: {e}")))?;
        let with_verifier = if self.verify_hostname {
            versions.with_webpki_verifier(webpki)
        } else {
            versions
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyNameVerifier {
                    roots,
                    inner: webpki,
                    algorithms: provider.signature_verification_algorithms,
                }))
        };
        let config = match self.identity {
            Some((chain, key)) => with_verifier
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error(format!("unusable client certificate or key: {e}")))?,
            None => with_verifier.with_no_client_auth(),
        };
        Ok(TlsConfig::new(Arc::new(config)))
    }
}

/// Verifies the server's chain to a trusted root like the standard verifier, but not the
/// name (see [`TlsConfigBuilder::verify_hostname`]).
#[derive(Debug)]
struct AnyNameVerifier {
    roots: Arc<RootCertStore>,
    /// The standard verifier, for the handshake signatures.
    inner: Arc<WebPkiServerVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        // Chain, validity period and key usage: everything but the name.
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The name the server certificate is checked against: the connect string's host, as an IP
/// address when it is an IP literal.
fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned())
        .map_err(|e| format!("host {host:?} is not a valid TLS server name: {e}"))
}

/// A human reading of a rustls error: what is probably wrong, then rustls's own words.
pub(crate) fn describe(error: &rustls::Error) -> String {
    use rustls::AlertDescription as Alert;
    let hint = match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                "the server certificate is not signed by a trusted CA"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server certificate is not valid for the host name in the connect string"
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => {
                "the server certificate is outside its validity period"
            }
            _ => "the server certificate was rejected",
        },
        rustls::Error::AlertReceived(
            Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::UnsupportedCertificate
            | Alert::HandshakeFailure,
        ) => "the server rejected the handshake (does it require a client certificate it trusts?)",
        rustls::Error::AlertReceived(_) => "the server aborted the handshake",
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server does not speak TLS here (is this its secureClientPort?)"
        }
        _ => "TLS failure",
    };
    format!("{hint}: {error}")
}

/// The TLS problem behind a failed handshake.
fn handshake_problem(error: &io::Error) -> String {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls_error) => format!("TLS handshake failed: {}", describe(rustls_error)),
        None if error.kind() == io::ErrorKind::UnexpectedEof => "TLS handshake failed: the server \
             closed the connection (is this its secureClientPort? does it want a client \
             certificate?)"
            .to_owned(),
        None => format!("TLS handshake failed: {error}"),
    }
}

/// A connector that opens TCP (Nagle off), then TLS with `config`, checking the server
/// certificate against the endpoint's host name. [`ClientBuilder::tls`](crate::ClientBuilder::tls)
/// installs it; use it directly to wrap it in a connector of your own.
///
/// A failed handshake is an error that the session reports as [`Error::Tls`] (and logs).
pub fn tls_connector(config: TlsConfig) -> Connector {
    let connector = TlsConnector::from(config.client);
    Arc::new(move |endpoint: Endpoint| {
        let connector = connector.clone();
        Box::pin(async move {
            let name = server_name(&endpoint.host)
                .map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, TlsFailure(m)))?;
            let tcp = tcp_connect(endpoint.addr).await?;
            match connector.connect(name, tcp).await {
                Ok(stream) => {
                    tracing::trace!(%endpoint, "TLS handshake done");
                    Ok(Box::new(stream) as Stream)
                }
                Err(error) => {
                    let problem = handshake_problem(&error);
                    tracing::debug!(%endpoint, %problem, "TLS handshake failed");
                    Err(io::Error::new(error.kind(), TlsFailure(problem)))
                }
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_follow_the_host_kind() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("zk1.example.com"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("bad name!").is_err());
    }

    #[test]
    fn builder_needs_roots_and_real_pem() {
        let missing = TlsConfig::builder().build().unwrap_err();
        assert!(matches!(&missing, Error::Tls(m) if m.contains("no CA certificate")));
        let garbage = TlsConfig::builder().ca_pem(b"not pem at all").unwrap_err();
        assert!(matches!(garbage, Error::Tls(_)));
        let no_file = TlsConfig::from_ca_pem_file("/nonexistent/ca.pem").unwrap_err();
        assert!(no_file.to_string().contains("/nonexistent/ca.pem"));
        assert!(!no_file.is_retryable());
    }

    #[test]
    fn descriptions_name_the_problem() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(describe(&unknown).contains("not signed by a trusted CA"));
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(describe(&name).contains("host name"));
        let io = io::Error::new(io::ErrorKind::InvalidData, unknown);
        assert!(handshake_problem(&io).starts_with("TLS handshake failed: the server certificate"));
    }
}
