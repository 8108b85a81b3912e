//! Encrypted Client Hello for the tests: an ECH configuration with a fresh HPKE key (X25519,
//! HKDF-SHA256, AES-128-GCM, from rustls's aws-lc-rs provider), and a reader for the ClientHello
//! a client sends, which opens the encrypted inner hello with that key.

use std::sync::Arc;

use rustls::crypto::hpke::{EncapsulatedSecret, Hpke, HpkePrivateKey};
use rustls::{ClientConfig, RootCertStore};

#[allow(unused_imports)] // not every test binary uses it
pub use rustls::crypto::aws_lc_rs::hpke::ALL_SUPPORTED_SUITES;

const SUITE: &dyn Hpke = rustls::crypto::aws_lc_rs::hpke::DH_KEM_X25519_HKDF_SHA256_AES_128;
/// The ECH extension's code point (draft-ietf-tls-esni, version 0xfe0d).
pub const ECH_EXTENSION: usize = 0xfe0d;

/// One ECH configuration: what a server publishes in its HTTPS record, and its private key.
pub struct EchKey {
    pub config_id: u8,
    pub public_name: String,
    /// The `ECHConfig` alone (HPKE's `info` takes it).
    pub config: Vec<u8>,
    /// An `ECHConfigList` holding it: the HTTPS record's `ech` value.
    pub list: Vec<u8>,
    private: HpkePrivateKey,
}

fn put_u16(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&u16::try_from(value).expect("fits u16").to_be_bytes());
}

impl EchKey {
    pub fn new(config_id: u8, public_name: &str) -> EchKey {
        let (public, private) = SUITE.generate_key_pair().expect("HPKE key pair");
        let mut contents = vec![config_id];
        put_u16(&mut contents, 0x0020); // DHKEM(X25519, HKDF-SHA256)
        put_u16(&mut contents, public.0.len());
        contents.extend_from_slice(&public.0);
        put_u16(&mut contents, 4);
        put_u16(&mut contents, 0x0001); // HKDF-SHA256
        put_u16(&mut contents, 0x0001); // AES-128-GCM
        contents.push(0); // maximum_name_length
        contents.push(u8::try_from(public_name.len()).expect("short name"));
        contents.extend_from_slice(public_name.as_bytes());
        put_u16(&mut contents, 0); // no extensions
        let mut config = Vec::new();
        put_u16(&mut config, ECH_EXTENSION);
        put_u16(&mut config, contents.len());
        config.extend_from_slice(&contents);
        let mut list = Vec::new();
        put_u16(&mut list, config.len());
        list.extend_from_slice(&config);
        EchKey {
            config_id,
            public_name: public_name.to_owned(),
            config,
            list,
            private,
        }
    }

    /// Opens the outer hello's encrypted payload: the inner hello (its body, without padding
    /// removed).
    pub fn open(&self, outer: &ClientHello) -> Vec<u8> {
        let ech = outer.ech.as_ref().expect("an outer ECH extension");
        assert_eq!(ech.config_id, self.config_id, "config id");
        let mut info = b"tls ech\0".to_vec();
        info.extend_from_slice(&self.config);
        // ClientHelloOuterAAD: the outer hello with the payload zeroed.
        let mut aad = outer.body.clone();
        aad[ech.payload_at..ech.payload_at + ech.payload.len()].fill(0);
        SUITE
            .open(
                &EncapsulatedSecret(ech.enc.clone()),
                &info,
                &aad,
                &ech.payload,
                &self.private,
            )
            .expect("the key holder opens the inner hello")
    }
}

/// A client configuration trusting `roots` for the given ECH mode, on aws-lc-rs (what
/// `TlsHandshake::ech` asks the caller to build).
pub fn ech_client_config(
    roots: Arc<RootCertStore>,
    alpn: &[&[u8]],
) -> impl Fn(rustls::client::EchMode) -> Result<ClientConfig, rustls::Error> + Send + Sync + 'static
{
    let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
    move |mode| {
        let mut config = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_ech(mode)?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        config.alpn_protocols = alpn.clone();
        Ok(config)
    }
}

/// The outer ECH extension of a ClientHello.
pub struct OuterEch {
    pub config_id: u8,
    pub enc: Vec<u8>,
    pub payload: Vec<u8>,
    /// Where the payload starts in the hello's body.
    payload_at: usize,
}

/// What the tests read from a ClientHello.
pub struct ClientHello {
    /// The handshake message's body (from `legacy_version` to the end of the extensions).
    pub body: Vec<u8>,
    pub server_name: Option<String>,
    /// The ECH extension's first byte: 0 outer, 1 inner.
    pub ech_type: Option<u8>,
    pub ech: Option<OuterEch>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        taken
    }
    fn u8(&mut self) -> usize {
        usize::from(self.take(1)[0])
    }
    fn u16(&mut self) -> usize {
        let b = self.take(2);
        usize::from(u16::from_be_bytes([b[0], b[1]]))
    }
}

impl ClientHello {
    /// Parses a ClientHello body (as it is in a handshake message, or as an inner hello).
    pub fn parse(body: &[u8]) -> ClientHello {
        let mut r = Reader { bytes: body, at: 0 };
        r.take(2 + 32); // legacy_version, random
        let session = r.u8();
        r.take(session);
        let suites = r.u16();
        r.take(suites);
        let compression = r.u8();
        r.take(compression);
        let end = r.u16() + r.at;
        let mut hello = ClientHello {
            body: body.to_vec(),
            server_name: None,
            ech_type: None,
            ech: None,
        };
        while r.at < end {
            let kind = r.u16();
            let len = r.u16();
            let start = r.at;
            match kind {
                0 => {
                    let _list = r.u16();
                    assert_eq!(r.u8(), 0, "host_name");
                    let n = r.u16();
                    hello.server_name = Some(String::from_utf8(r.take(n).to_vec()).expect("utf-8"));
                }
                ECH_EXTENSION => {
                    let ech_type = r.u8();
                    hello.ech_type = Some(u8::try_from(ech_type).expect("u8"));
                    if ech_type == 0 {
                        r.take(4); // cipher suite
                        let config_id = u8::try_from(r.u8()).expect("u8");
                        let n = r.u16();
                        let enc = r.take(n).to_vec();
                        let n = r.u16();
                        let payload_at = r.at;
                        let payload = r.take(n).to_vec();
                        hello.ech = Some(OuterEch {
                            config_id,
                            enc,
                            payload,
                            payload_at,
                        });
                    }
                }
                _ => {}
            }
            r.at = start + len;
        }
        hello
    }

    /// Reads one ClientHello off `stream` (TLS records until the whole handshake message is in).
    pub async fn read(stream: &mut tokio::net::TcpStream) -> (ClientHello, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let mut raw = Vec::new();
        let mut message = Vec::new();
        loop {
            let mut header = [0; 5];
            stream.read_exact(&mut header).await.expect("record header");
            assert_eq!(header[0], 22, "a handshake record");
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            let mut fragment = vec![0; len];
            stream.read_exact(&mut fragment).await.expect("record");
            raw.extend_from_slice(&header);
            raw.extend_from_slice(&fragment);
            message.extend_from_slice(&fragment);
            if message.len() >= 4 {
                assert_eq!(message[0], 1, "a ClientHello");
                let body = usize::from(message[1]) << 16
                    | usize::from(message[2]) << 8
                    | usize::from(message[3]);
                if message.len() >= 4 + body {
                    return (ClientHello::parse(&message[4..4 + body]), raw);
                }
            }
        }
    }
}
