//! Certificates for the TLS tests, made fresh for each server: a CA, a server
//! certificate for `127.0.0.1` and `localhost` and a client certificate, both
//! signed by it; and a stranger — an unrelated CA with a client certificate
//! of its own — to play the attacker on either side of the connection.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::PathBuf;

/// PEM files in a directory of their own, removed when dropped.
#[derive(Debug)]
pub struct Pki {
    dir: tempfile::TempDir,
}

/// A CA: its parameters and key, to sign with.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> anyhow::Result<(Ca, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key)?.pem();
        Ok((Ca { params, key }, pem))
    }

    /// A certificate for `names` (the first is its common name) and its key.
    fn sign(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> anyhow::Result<[String; 2]> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok([cert.pem(), key.serialize_pem()])
    }
}

impl Pki {
    pub fn new() -> anyhow::Result<Pki> {
        let pki = Pki {
            dir: tempfile::tempdir()?,
        };
        let (ca, ca_pem) = Ca::new("tacos test CA")?;
        let [server, server_key] = ca.sign(
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let [client, client_key] =
            ca.sign(&["tacos-test-client"], ExtendedKeyUsagePurpose::ClientAuth)?;
        let (stranger, stranger_pem) = Ca::new("a stranger's CA")?;
        let [s_client, s_client_key] =
            stranger.sign(&["a-stranger"], ExtendedKeyUsagePurpose::ClientAuth)?;
        let [s_server, s_server_key] = stranger.sign(
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        for (name, pem) in [
            ("ca.pem", ca_pem),
            ("server.pem", server),
            ("server.key", server_key),
            ("client.pem", client),
            ("client.key", client_key),
            ("stranger-ca.pem", stranger_pem),
            ("stranger-client.pem", s_client),
            ("stranger-client.key", s_client_key),
            ("stranger-server.pem", s_server),
            ("stranger-server.key", s_server_key),
        ] {
            let path = pki.path(name);
            std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(pki)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA that signed the server's and the client's certificates.
    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    pub fn server(&self) -> [PathBuf; 2] {
        [self.path("server.pem"), self.path("server.key")]
    }

    /// A client certificate and key the CA signed.
    pub fn client(&self) -> [PathBuf; 2] {
        [self.path("client.pem"), self.path("client.key")]
    }

    /// A CA that signed neither the server nor the client.
    pub fn stranger_ca(&self) -> PathBuf {
        self.path("stranger-ca.pem")
    }

    /// A server certificate and key for `127.0.0.1` from the stranger's CA:
    /// someone in the middle, posing as the server.
    pub fn stranger_server(&self) -> [PathBuf; 2] {
        [
            self.path("stranger-server.pem"),
            self.path("stranger-server.key"),
        ]
    }

    /// A client certificate and key from the stranger's CA.
    pub fn stranger_client(&self) -> [PathBuf; 2] {
        [
            self.path("stranger-client.pem"),
            self.path("stranger-client.key"),
        ]
    }
}
