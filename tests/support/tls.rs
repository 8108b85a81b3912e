//! A generated certificate and the rustls configurations around it, for the TLS tests.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// ring, which builds with nothing but a C compiler.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `names`, as a server configuration offering `server_alpn` and
/// a client configuration that trusts it and offers `client_alpn`, and the certificate in PEM.
pub fn configs(
    names: &[String],
    server_alpn: &[&[u8]],
    client_alpn: &[&[u8]],
) -> (ServerConfig, ClientConfig, String) {
    let certified = rcgen::generate_simple_self_signed(names.to_vec()).expect("certificate");
    let pem = certified.cert.pem();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    server.alpn_protocols = server_alpn.iter().map(|p| p.to_vec()).collect();
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("root");
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = client_alpn.iter().map(|p| p.to_vec()).collect();
    (server, client, pem)
}
