//! Throwaway certificates for TLS tests (generated with rcgen, ECDSA P-256, valid from a day
//! ago for a week): a [`TestCa`] that issues server and client [`Identity`]s, in PEM, the
//! way both Apache ZooKeeper (`ssl.keyStore.type=PEM`) and zk-client read them.
//!
//! ```no_run
//! use zk_testkit::tls::TestCa;
//!
//! # fn demo() -> Result<(), rcgen::Error> {
//! let ca = TestCa::new("zk-testkit CA")?;
//! let server = ca.issue_server(&["localhost", "127.0.0.1"])?; // for ApacheTls
//! let client = ca.issue_client("app-1")?; // x509 identity "CN=app-1,O=zk-rs tests"
//! assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
//! # Ok(()) }
//! ```

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The organisation of every generated subject.
pub const ORGANIZATION: &str = "zk-rs tests";

/// A certificate and its private key, in PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate (`CERTIFICATE` block).
    pub cert_pem: String,
    /// Its private key (PKCS#8 `PRIVATE KEY` block).
    pub key_pem: String,
    /// The subject as Java prints it (RFC 2253), which Apache's x509 authentication
    /// provider takes as the id, e.g. `CN=app-1,O=zk-rs tests`.
    pub subject_dn: String,
}

impl Identity {
    /// Certificate then key, in one PEM document (what Apache's PEM key store reads).
    pub fn combined_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

/// A self-signed test certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(7);
}

impl TestCa {
    /// A new CA whose subject is `CN=<common_name>,O=zk-rs tests`.
    ///
    /// # Errors
    ///
    /// Whatever rcgen reports (key generation, encoding).
    pub fn new(common_name: &str) -> Result<TestCa, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, ORGANIZATION);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate (the trust root for both sides).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    fn issue(
        &self,
        common_name: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<Identity, rcgen::Error> {
        // IP literals become IP subject alternative names, the rest DNS names.
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        // Encoded O then CN (most general first): Java (RFC 2253, most specific first)
        // prints `CN=...,O=...`. (rcgen's default subject has a CN: start empty.)
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, ORGANIZATION);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        validity(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            subject_dn: format!("CN={common_name},O={ORGANIZATION}"),
        })
    }

    /// A server certificate valid for `names` (DNS names or IP literals), e.g.
    /// `["localhost", "127.0.0.1"]`.
    ///
    /// # Errors
    ///
    /// Whatever rcgen reports (e.g. an invalid name).
    pub fn issue_server(&self, names: &[&str]) -> Result<Identity, rcgen::Error> {
        let common_name = names.first().copied().unwrap_or("zk-testkit server");
        self.issue(common_name, names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for `CN=<common_name>,O=zk-rs tests` (also valid for localhost
    /// and 127.0.0.1, in case a server checks client host names).
    ///
    /// # Errors
    ///
    /// Whatever rcgen reports.
    pub fn issue_client(&self, common_name: &str) -> Result<Identity, rcgen::Error> {
        self.issue(
            common_name,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }
}
