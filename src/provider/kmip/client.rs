//! A KMIP client over TLS: message framing, protocol version negotiation (Discover Versions),
//! a bounded connection pool with timeouts, and the handful of operations Cellar needs.
//!
//! TLS is rustls on the aws-lc-rs FIPS crypto provider (`rustls::crypto::default_fips_provider`),
//! so the handshake and record layer run inside the same AWS-LC FIPS module as the rest of Cellar.
//! A configuration that rustls does not report as FIPS (`ClientConfig::fips()`) is refused, and
//! every connection is checked again after its handshake (`ClientConnection::fips()`).

use super::ttlv::{self, Ttlv, Value};
use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// KMIP tags used by Cellar (KMIP 1.x/2.0 specification, "Tags").
#[allow(missing_docs)]
pub mod tag {
    pub const ATTRIBUTE: u32 = 0x420008;
    pub const ATTRIBUTE_NAME: u32 = 0x42000A;
    pub const ATTRIBUTE_VALUE: u32 = 0x42000B;
    pub const BATCH_COUNT: u32 = 0x42000D;
    pub const BATCH_ITEM: u32 = 0x42000F;
    pub const BLOCK_CIPHER_MODE: u32 = 0x420011;
    pub const CRYPTOGRAPHIC_ALGORITHM: u32 = 0x420028;
    pub const CRYPTOGRAPHIC_LENGTH: u32 = 0x42002A;
    pub const CRYPTOGRAPHIC_PARAMETERS: u32 = 0x42002B;
    pub const CRYPTOGRAPHIC_USAGE_MASK: u32 = 0x42002C;
    pub const IV_COUNTER_NONCE: u32 = 0x42003D;
    pub const KEY_BLOCK: u32 = 0x420040;
    pub const KEY_FORMAT_TYPE: u32 = 0x420042;
    pub const KEY_MATERIAL: u32 = 0x420043;
    pub const KEY_VALUE: u32 = 0x420045;
    pub const NAME: u32 = 0x420053;
    pub const NAME_TYPE: u32 = 0x420054;
    pub const NAME_VALUE: u32 = 0x420055;
    pub const OBJECT_TYPE: u32 = 0x420057;
    pub const OPERATION: u32 = 0x42005C;
    pub const PROTOCOL_VERSION: u32 = 0x420069;
    pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42006A;
    pub const PROTOCOL_VERSION_MINOR: u32 = 0x42006B;
    pub const REQUEST_HEADER: u32 = 0x420077;
    pub const REQUEST_MESSAGE: u32 = 0x420078;
    pub const REQUEST_PAYLOAD: u32 = 0x420079;
    pub const RESPONSE_HEADER: u32 = 0x42007A;
    pub const RESPONSE_MESSAGE: u32 = 0x42007B;
    pub const RESPONSE_PAYLOAD: u32 = 0x42007C;
    pub const RESULT_MESSAGE: u32 = 0x42007D;
    pub const RESULT_REASON: u32 = 0x42007E;
    pub const RESULT_STATUS: u32 = 0x42007F;
    pub const REVOCATION_REASON: u32 = 0x420081;
    pub const REVOCATION_REASON_CODE: u32 = 0x420082;
    pub const STATE: u32 = 0x42008D;
    pub const SYMMETRIC_KEY: u32 = 0x42008F;
    pub const TEMPLATE_ATTRIBUTE: u32 = 0x420091;
    pub const UNIQUE_IDENTIFIER: u32 = 0x420094;
    pub const DATA: u32 = 0x4200C2;
    pub const RANDOM_IV: u32 = 0x4200C5;
    pub const TAG_LENGTH: u32 = 0x4200CE;
    pub const AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA: u32 = 0x4200FE;
    pub const AUTHENTICATED_ENCRYPTION_TAG: u32 = 0x4200FF;
    /// KMIP 2.0: the attributes of Create, Register and Locate.
    pub const ATTRIBUTES: u32 = 0x420125;
    /// KMIP 2.0: names an attribute in Get Attributes.
    pub const ATTRIBUTE_REFERENCE: u32 = 0x42013B;
}

/// Operations (KMIP "Operation" enumeration).
#[allow(missing_docs)]
pub mod op {
    pub const CREATE: u32 = 0x01;
    pub const REGISTER: u32 = 0x03;
    pub const LOCATE: u32 = 0x08;
    pub const GET: u32 = 0x0A;
    pub const GET_ATTRIBUTES: u32 = 0x0B;
    pub const ACTIVATE: u32 = 0x12;
    pub const REVOKE: u32 = 0x13;
    pub const DESTROY: u32 = 0x14;
    pub const DISCOVER_VERSIONS: u32 = 0x1E;
    pub const ENCRYPT: u32 = 0x1F;
    pub const DECRYPT: u32 = 0x20;
}

const OBJECT_SYMMETRIC_KEY: u32 = 0x02;
const ALGORITHM_AES: u32 = 0x03;
const FORMAT_RAW: u32 = 0x01;
const MODE_GCM: u32 = 0x09;
const NAME_UNINTERPRETED_TEXT: u32 = 0x01;
/// Usage mask bits: Encrypt, Decrypt, Export.
pub const USAGE_ENCRYPT_DECRYPT: i32 = 0x04 | 0x08;
/// Encrypt | Decrypt | Export: a key Cellar fetches (fetch mode) must allow Get of its material.
pub const USAGE_FETCH: i32 = 0x04 | 0x08 | 0x40;
/// Revocation reason "Cessation of Operation".
const REVOKE_CESSATION: u32 = 0x06;
/// Largest response Cellar reads (its responses are a few hundred bytes).
const MAX_RESPONSE: usize = 1 << 20;

/// KMIP key states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Created, not yet activated.
    PreActive,
    /// Usable.
    Active,
    /// Deactivated (for example revoked for cessation of operation).
    Deactivated,
    /// Compromised.
    Compromised,
    /// Destroyed.
    Destroyed,
    /// Destroyed and compromised.
    DestroyedCompromised,
    /// A value this client does not know.
    Other(u32),
}

impl KeyState {
    fn from_u32(v: u32) -> Self {
        match v {
            1 => KeyState::PreActive,
            2 => KeyState::Active,
            3 => KeyState::Deactivated,
            4 => KeyState::Compromised,
            5 => KeyState::Destroyed,
            6 => KeyState::DestroyedCompromised,
            o => KeyState::Other(o),
        }
    }
}

/// The name of a KMIP result reason (a static text, safe for last-error).
pub fn reason_name(reason: u32) -> &'static str {
    match reason {
        0x01 => "KMIP result reason: Item Not Found",
        0x02 => "KMIP result reason: Response Too Large",
        0x03 => "KMIP result reason: Authentication Not Successful",
        0x04 => "KMIP result reason: Invalid Message",
        0x05 => "KMIP result reason: Operation Not Supported",
        0x06 => "KMIP result reason: Missing Data",
        0x07 => "KMIP result reason: Invalid Field",
        0x08 => "KMIP result reason: Feature Not Supported",
        0x09 => "KMIP result reason: Operation Canceled By Requester",
        0x0A => "KMIP result reason: Cryptographic Failure",
        0x0B => "KMIP result reason: Illegal Operation",
        0x0C => "KMIP result reason: Permission Denied",
        0x0D => "KMIP result reason: Object archived",
        0x0E => "KMIP result reason: Index Out of Bounds",
        0x0F => "KMIP result reason: Application Namespace Not Supported",
        0x10 => "KMIP result reason: Key Format Type Not Supported",
        0x11 => "KMIP result reason: Key Compression Type Not Supported",
        0x12 => "KMIP result reason: Encoding Option Error",
        0x13 => "KMIP result reason: Key Value Not Present",
        0x14 => "KMIP result reason: Attestation Required",
        0x15 => "KMIP result reason: Attestation Failed",
        0x16 => "KMIP result reason: Sensitive",
        0x17 => "KMIP result reason: Not Extractable",
        0x18 => "KMIP result reason: Object Already Exists",
        0x100 => "KMIP result reason: General Failure",
        _ => "KMIP result reason: (unknown code)",
    }
}

/// Where and how to reach a KMIP server. Paths are PEM files.
#[derive(Clone, Debug)]
pub struct KmipConfig {
    /// Host name or address of the server.
    pub host: String,
    /// TCP port (5696 is KMIP's registered port).
    pub port: u16,
    /// The name the server certificate must carry; `None` uses `host`.
    pub server_name: Option<String>,
    /// The client certificate chain (PEM).
    pub client_cert: PathBuf,
    /// The client private key (PEM, PKCS#8, SEC1 or PKCS#1).
    pub client_key: PathBuf,
    /// The certificate authorities trusted for the server certificate (PEM).
    pub ca: PathBuf,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Timeout for each read and write, and for waiting for a free pooled connection.
    pub io_timeout: Duration,
    /// Most connections open at once (1 to 64).
    pub max_connections: usize,
}

impl KmipConfig {
    /// A configuration with 5 s timeouts and 4 connections.
    pub fn new(host: &str, port: u16, client_cert: PathBuf, client_key: PathBuf, ca: PathBuf) -> Self {
        KmipConfig {
            host: host.to_owned(),
            port,
            server_name: None,
            client_cert,
            client_key,
            ca,
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
            max_connections: 4,
        }
    }
}

type Conn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

struct Pool {
    idle: Vec<Conn>,
    open: usize,
}

/// What the TLS layer negotiated on the last new connection (public facts, no secrets).
#[derive(Clone, Debug, Default)]
pub struct TlsInfo {
    /// rustls reported the connection as FIPS (FIPS provider, FIPS-approved configuration).
    pub fips: bool,
    /// "TLSv1_3" or "TLSv1_2".
    pub protocol: String,
    /// The IANA name of the negotiated cipher suite.
    pub cipher_suite: String,
    /// The TLS version's wire code (0x0304, 0x0303).
    pub protocol_code: u16,
    /// The cipher suite's IANA code.
    pub suite_code: u16,
}

/// A KMIP client: thread-safe, with a bounded pool of TLS connections.
pub struct KmipClient {
    cfg: KmipConfig,
    tls: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
    pool: Mutex<Pool>,
    freed: Condvar,
    version: Mutex<Option<(i32, i32)>>,
    last_tls: Mutex<TlsInfo>,
}

impl core::fmt::Debug for KmipClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KmipClient({}:{})", self.cfg.host, self.cfg.port)
    }
}

fn failed(msg: &'static str) -> Error {
    Error::ProviderFailed(msg)
}

/// The rustls configuration: FIPS provider, TLS 1.3 and 1.2, the given CA only, client certificate.
pub fn tls_config(cfg: &KmipConfig) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::default_fips_provider());
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(&cfg.ca).map_err(|_| Error::InvalidArgument("the KMIP CA file cannot be read as PEM"))?;
    for ca in cas {
        let ca = ca.map_err(|_| Error::InvalidArgument("the KMIP CA file holds an invalid PEM certificate"))?;
        roots.add(ca).map_err(|_| Error::InvalidArgument("the KMIP CA file holds a certificate rustls refuses"))?;
    }
    if roots.is_empty() {
        return Err(Error::InvalidArgument("the KMIP CA file holds no certificate"));
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.client_cert)
        .map_err(|_| Error::InvalidArgument("the KMIP client certificate file cannot be read as PEM"))?
        .collect::<core::result::Result<_, _>>()
        .map_err(|_| Error::InvalidArgument("the KMIP client certificate file holds an invalid certificate"))?;
    if chain.is_empty() {
        return Err(Error::InvalidArgument("the KMIP client certificate file holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.client_key)
        .map_err(|_| Error::InvalidArgument("the KMIP client key file holds no readable private key"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|_| Error::Internal("rustls refused the FIPS provider's protocol versions"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|_| Error::InvalidArgument("the KMIP client key does not match its certificate or is unsupported"))?;
    if !config.fips() {
        return Err(Error::NotFips("the TLS configuration for KMIP is not FIPS (rustls ClientConfig::fips() is false)"));
    }
    Ok(config)
}

impl KmipClient {
    /// Builds the client (reads the PEM files, checks the TLS configuration is FIPS). No
    /// connection is made until the first request.
    pub fn new(cfg: KmipConfig) -> Result<Self> {
        if cfg.host.is_empty() || cfg.port == 0 {
            return Err(Error::InvalidArgument("the KMIP server host and port must be set"));
        }
        if cfg.max_connections == 0 || cfg.max_connections > 64 {
            return Err(Error::InvalidArgument("max_connections must be 1 to 64"));
        }
        if cfg.connect_timeout.is_zero() || cfg.io_timeout.is_zero() {
            return Err(Error::InvalidArgument("KMIP timeouts must be positive"));
        }
        let name = cfg.server_name.clone().unwrap_or_else(|| cfg.host.clone());
        let server_name = ServerName::try_from(name).map_err(|_| Error::InvalidArgument("the KMIP server name is not a valid DNS name or address"))?;
        let tls = Arc::new(tls_config(&cfg)?);
        Ok(KmipClient {
            cfg,
            tls,
            server_name,
            pool: Mutex::new(Pool { idle: Vec::new(), open: 0 }),
            freed: Condvar::new(),
            version: Mutex::new(None),
            last_tls: Mutex::new(TlsInfo::default()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KmipConfig {
        &self.cfg
    }

    /// What TLS negotiated on the newest connection (empty before the first).
    pub fn tls_info(&self) -> TlsInfo {
        self.last_tls.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The protocol version in use (negotiated on first use).
    pub fn protocol_version(&self) -> Result<(i32, i32)> {
        self.negotiated()
    }

    fn connect(&self) -> Result<Conn> {
        let addrs = (self.cfg.host.as_str(), self.cfg.port)
            .to_socket_addrs()
            .map_err(|_| failed("the KMIP server host name does not resolve"))?;
        let mut last = failed("the KMIP server host name resolves to no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.cfg.connect_timeout) {
                Ok(sock) => {
                    let _ = sock.set_nodelay(true);
                    sock.set_read_timeout(Some(self.cfg.io_timeout)).map_err(|_| failed("cannot set a socket timeout"))?;
                    sock.set_write_timeout(Some(self.cfg.io_timeout)).map_err(|_| failed("cannot set a socket timeout"))?;
                    let conn = rustls::ClientConnection::new(self.tls.clone(), self.server_name.clone())
                        .map_err(|_| failed("cannot start a TLS connection to the KMIP server"))?;
                    let mut s = rustls::StreamOwned::new(conn, sock);
                    while s.conn.is_handshaking() {
                        s.conn.complete_io(&mut s.sock).map_err(|e| tls_error(&e))?;
                    }
                    if !s.conn.fips() {
                        return Err(Error::NotFips("the TLS connection to the KMIP server is not FIPS"));
                    }
                    if let Ok(mut t) = self.last_tls.lock() {
                        *t = TlsInfo {
                            fips: s.conn.fips(),
                            protocol: s.conn.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default(),
                            cipher_suite: s
                                .conn
                                .negotiated_cipher_suite()
                                .map(|c| format!("{:?}", c.suite()))
                                .unwrap_or_default(),
                            protocol_code: s.conn.protocol_version().map(u16::from).unwrap_or(0),
                            suite_code: s.conn.negotiated_cipher_suite().map(|c| u16::from(c.suite())).unwrap_or(0),
                        };
                    }
                    return Ok(s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => last = failed("connecting to the KMIP server timed out"),
                Err(_) => last = failed("the KMIP server refused the connection or is unreachable"),
            }
        }
        Err(last)
    }

    /// Takes an idle connection, opens a new one while under the limit, or waits for one.
    fn checkout(&self) -> Result<Conn> {
        let deadline = Instant::now() + self.cfg.io_timeout;
        let mut p = self.pool.lock().map_err(|_| Error::Internal("KMIP pool lock poisoned"))?;
        loop {
            if let Some(c) = p.idle.pop() {
                return Ok(c);
            }
            if p.open < self.cfg.max_connections {
                p.open += 1;
                drop(p);
                return self.connect().inspect_err(|_| self.release_slot());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(failed("timed out waiting for a free KMIP connection"));
            }
            p = self
                .freed
                .wait_timeout(p, deadline - now)
                .map_err(|_| Error::Internal("KMIP pool lock poisoned"))?
                .0;
        }
    }

    fn checkin(&self, c: Conn) {
        if let Ok(mut p) = self.pool.lock() {
            p.idle.push(c);
        }
        self.freed.notify_one();
    }

    fn release_slot(&self) {
        if let Ok(mut p) = self.pool.lock() {
            p.open = p.open.saturating_sub(1);
        }
        self.freed.notify_one();
    }

    fn exchange(&self, conn: &mut Conn, request: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        conn.write_all(request).map_err(|e| io_error(&e))?;
        conn.flush().map_err(|e| io_error(&e))?;
        let mut h = [0u8; 8];
        conn.read_exact(&mut h).map_err(|e| io_error(&e))?;
        let (t, ty, len) = ttlv::header(&h);
        if t != tag::RESPONSE_MESSAGE || ty != ttlv::ty::STRUCTURE || len as usize > MAX_RESPONSE || len % 8 != 0 {
            return Err(failed("the KMIP server sent something that is not a KMIP response message"));
        }
        // The response may carry key material (Get): the buffer is wiped when dropped.
        let mut buf = Zeroizing::new(vec![0u8; 8 + len as usize]);
        buf[..8].copy_from_slice(&h);
        conn.read_exact(&mut buf[8..]).map_err(|e| io_error(&e))?;
        Ok(buf)
    }

    /// Sends one request message and returns the decoded response. A pooled connection that
    /// fails before any response byte (closed by the server while idle) is retried once on a
    /// fresh connection; everything else fails with the error.
    fn roundtrip(&self, request: &[u8]) -> Result<Ttlv> {
        for attempt in 0..2 {
            let mut conn = self.checkout()?;
            match self.exchange(&mut conn, request) {
                Ok(bytes) => {
                    self.checkin(conn);
                    return Ttlv::decode(&bytes).map_err(|_| failed("the KMIP server sent malformed TTLV"));
                }
                Err(e) => {
                    drop(conn);
                    self.release_slot();
                    if attempt == 1 || !matches!(e, Error::ProviderFailed("the KMIP server closed the connection")) {
                        return Err(e);
                    }
                }
            }
        }
        Err(failed("the KMIP server closed the connection"))
    }

    fn negotiated(&self) -> Result<(i32, i32)> {
        if let Some(v) = *self.version.lock().map_err(|_| Error::Internal("KMIP lock poisoned"))? {
            return Ok(v);
        }
        // Discover Versions in 1.2 framing (every server of interest reads it), offering the
        // versions this client speaks; the server answers with those it shares, best first.
        let offer = [(2, 0), (1, 4), (1, 3), (1, 2)];
        let payload = offer
            .iter()
            .map(|&(a, b)| Ttlv::structure(tag::PROTOCOL_VERSION, vec![Ttlv::int(tag::PROTOCOL_VERSION_MAJOR, a), Ttlv::int(tag::PROTOCOL_VERSION_MINOR, b)]))
            .collect();
        let resp = self.call_with((1, 2), op::DISCOVER_VERSIONS, payload)?;
        let mut chosen = None;
        for v in resp.find_all(tag::PROTOCOL_VERSION) {
            let major = v.find(tag::PROTOCOL_VERSION_MAJOR).and_then(Ttlv::as_int);
            let minor = v.find(tag::PROTOCOL_VERSION_MINOR).and_then(Ttlv::as_int);
            if let (Some(a), Some(b)) = (major, minor) {
                if offer.contains(&(a, b)) {
                    chosen = Some((a, b));
                    break;
                }
            }
        }
        let v = chosen.ok_or(failed("the KMIP server shares no protocol version with Cellar (1.2, 1.3, 1.4, 2.0)"))?;
        if let Ok(mut g) = self.version.lock() {
            *g = Some(v);
        }
        Ok(v)
    }

    /// One operation in the negotiated version; returns its response payload.
    fn call(&self, operation: u32, payload: Vec<Ttlv>) -> Result<Ttlv> {
        let v = self.negotiated()?;
        self.call_with(v, operation, payload)
    }

    fn call_with(&self, version: (i32, i32), operation: u32, payload: Vec<Ttlv>) -> Result<Ttlv> {
        let request = Ttlv::structure(
            tag::REQUEST_MESSAGE,
            vec![
                Ttlv::structure(
                    tag::REQUEST_HEADER,
                    vec![
                        Ttlv::structure(
                            tag::PROTOCOL_VERSION,
                            vec![Ttlv::int(tag::PROTOCOL_VERSION_MAJOR, version.0), Ttlv::int(tag::PROTOCOL_VERSION_MINOR, version.1)],
                        ),
                        Ttlv::int(tag::BATCH_COUNT, 1),
                    ],
                ),
                Ttlv::structure(
                    tag::BATCH_ITEM,
                    vec![Ttlv::enumeration(tag::OPERATION, operation), Ttlv::structure(tag::REQUEST_PAYLOAD, payload)],
                ),
            ],
        );
        // The request may carry key material (Register): wipe the encoding after sending.
        let bytes = Zeroizing::new(request.to_bytes());
        let resp = self.roundtrip(&bytes)?;
        parse_response(resp, operation)
    }

    fn is_v2(&self) -> Result<bool> {
        Ok(self.negotiated()?.0 >= 2)
    }

    /// Attributes for Create/Register/Locate, in the negotiated version's encoding.
    fn attributes(&self, attrs: Vec<(&'static str, Ttlv)>) -> Result<Ttlv> {
        if self.is_v2()? {
            // KMIP 2.0: each attribute is an item with its own tag inside Attributes.
            Ok(Ttlv::structure(tag::ATTRIBUTES, attrs.into_iter().map(|(_, v)| v).collect()))
        } else {
            Ok(Ttlv::structure(
                tag::TEMPLATE_ATTRIBUTE,
                attrs
                    .into_iter()
                    .map(|(name, v)| {
                        Ttlv::structure(
                            tag::ATTRIBUTE,
                            vec![Ttlv::text(tag::ATTRIBUTE_NAME, name), Ttlv { tag: tag::ATTRIBUTE_VALUE, value: v.value }],
                        )
                    })
                    .collect(),
            ))
        }
    }

    fn name_attr(name: &str) -> (&'static str, Ttlv) {
        (
            "Name",
            Ttlv::structure(tag::NAME, vec![Ttlv::text(tag::NAME_VALUE, name), Ttlv::enumeration(tag::NAME_TYPE, NAME_UNINTERPRETED_TEXT)]),
        )
    }

    fn key_attrs(name: &str, usage: i32) -> Vec<(&'static str, Ttlv)> {
        vec![
            ("Cryptographic Algorithm", Ttlv::enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, ALGORITHM_AES)),
            ("Cryptographic Length", Ttlv::int(tag::CRYPTOGRAPHIC_LENGTH, 256)),
            ("Cryptographic Usage Mask", Ttlv::int(tag::CRYPTOGRAPHIC_USAGE_MASK, usage)),
            Self::name_attr(name),
        ]
    }

    /// Create: a new AES-256 symmetric key named `name` generated by the server. Returns its
    /// unique identifier.
    pub fn create_aes256(&self, name: &str, usage: i32) -> Result<String> {
        let attrs = self.attributes(Self::key_attrs(name, usage))?;
        let r = self.call(op::CREATE, vec![Ttlv::enumeration(tag::OBJECT_TYPE, OBJECT_SYMMETRIC_KEY), attrs])?;
        uid_of(&r)
    }

    /// Register: stores the caller's AES-256 key (bring your own key) under `name`.
    pub fn register_aes256(&self, name: &str, material: &[u8], usage: i32) -> Result<String> {
        if material.len() != 32 {
            return Err(Error::InvalidKey("a KMIP tenant key must be 32 bytes (AES-256)"));
        }
        let block = Ttlv::structure(
            tag::KEY_BLOCK,
            vec![
                Ttlv::enumeration(tag::KEY_FORMAT_TYPE, FORMAT_RAW),
                Ttlv::structure(tag::KEY_VALUE, vec![Ttlv::bytes(tag::KEY_MATERIAL, material)]),
                Ttlv::enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, ALGORITHM_AES),
                Ttlv::int(tag::CRYPTOGRAPHIC_LENGTH, 256),
            ],
        );
        let attrs = self.attributes(vec![("Cryptographic Usage Mask", Ttlv::int(tag::CRYPTOGRAPHIC_USAGE_MASK, usage)), Self::name_attr(name)])?;
        let r = self.call(
            op::REGISTER,
            vec![Ttlv::enumeration(tag::OBJECT_TYPE, OBJECT_SYMMETRIC_KEY), attrs, Ttlv::structure(tag::SYMMETRIC_KEY, vec![block])],
        )?;
        uid_of(&r)
    }

    /// Activate.
    pub fn activate(&self, uid: &str) -> Result<()> {
        self.call(op::ACTIVATE, vec![Ttlv::text(tag::UNIQUE_IDENTIFIER, uid)]).map(|_| ())
    }

    /// Locate by name: the unique identifiers of objects named `name`.
    pub fn locate(&self, name: &str) -> Result<Vec<String>> {
        let payload = if self.is_v2()? {
            vec![self.attributes(vec![Self::name_attr(name)])?]
        } else {
            match self.attributes(vec![Self::name_attr(name)])?.value {
                Value::Structure(items) => items,
                _ => Vec::new(),
            }
        };
        let r = self.call(op::LOCATE, payload)?;
        Ok(r.find_all(tag::UNIQUE_IDENTIFIER).filter_map(|t| t.as_text().map(str::to_owned)).collect())
    }

    /// Get Attributes: (state, cryptographic algorithm, cryptographic length) of a key.
    pub fn key_attributes(&self, uid: &str) -> Result<(KeyState, Option<u32>, Option<i32>)> {
        let names = ["State", "Cryptographic Algorithm", "Cryptographic Length"];
        let mut payload = vec![Ttlv::text(tag::UNIQUE_IDENTIFIER, uid)];
        if self.is_v2()? {
            let tags = [tag::STATE, tag::CRYPTOGRAPHIC_ALGORITHM, tag::CRYPTOGRAPHIC_LENGTH];
            payload.extend(tags.iter().map(|&t| Ttlv::enumeration(tag::ATTRIBUTE_REFERENCE, t)));
        } else {
            payload.extend(names.iter().map(|n| Ttlv::text(tag::ATTRIBUTE_NAME, n)));
        }
        let r = self.call(op::GET_ATTRIBUTES, payload)?;
        let (mut state, mut alg, mut len) = (None, None, None);
        if let Some(attrs) = r.find(tag::ATTRIBUTES) {
            state = attrs.find(tag::STATE).and_then(Ttlv::as_enum);
            alg = attrs.find(tag::CRYPTOGRAPHIC_ALGORITHM).and_then(Ttlv::as_enum);
            len = attrs.find(tag::CRYPTOGRAPHIC_LENGTH).and_then(Ttlv::as_int);
        }
        for a in r.find_all(tag::ATTRIBUTE) {
            let name = a.find(tag::ATTRIBUTE_NAME).and_then(Ttlv::as_text);
            let v = a.find(tag::ATTRIBUTE_VALUE);
            match name {
                Some("State") => state = v.and_then(Ttlv::as_enum),
                Some("Cryptographic Algorithm") => alg = v.and_then(Ttlv::as_enum),
                Some("Cryptographic Length") => len = v.and_then(Ttlv::as_int),
                _ => {}
            }
        }
        let state = state.ok_or(failed("the KMIP server did not report the key's state"))?;
        Ok((KeyState::from_u32(state), alg, len))
    }

    /// Checks that `uid` is an active AES-256 key (refuses revoked, destroyed, pre-active keys
    /// with a clear error).
    pub fn check_active_aes256(&self, uid: &str) -> Result<()> {
        let (state, alg, len) = self.key_attributes(uid).map_err(|e| match e {
            Error::ProviderFailed(m) if m == reason_name(0x01) => {
                Error::KeyNotFound("the KMIP key is not on the server (KMIP result reason: Item Not Found): destroyed, or never created")
            }
            e => e,
        })?;
        match state {
            KeyState::Active => {}
            KeyState::PreActive => return Err(Error::InvalidKey("the KMIP key is not active yet (Pre-Active): activate it on the server")),
            KeyState::Deactivated => return Err(Error::InvalidKey("the KMIP key was revoked (Deactivated) on the server")),
            KeyState::Compromised => return Err(Error::InvalidKey("the KMIP key is marked Compromised on the server")),
            KeyState::Destroyed | KeyState::DestroyedCompromised => return Err(Error::KeyNotFound("the KMIP key was destroyed on the server")),
            KeyState::Other(_) => return Err(Error::InvalidKey("the KMIP key is in an unknown state")),
        }
        if alg.is_some_and(|a| a != ALGORITHM_AES) || len.is_some_and(|l| l != 256) {
            return Err(Error::InvalidKey("the KMIP key is not an AES-256 key"));
        }
        Ok(())
    }

    /// Get: the raw material of an AES-256 key, in zeroizing memory.
    pub fn get_aes256(&self, uid: &str) -> Result<Zeroizing<Vec<u8>>> {
        let r = self.call(
            op::GET,
            vec![
                Ttlv::text(tag::UNIQUE_IDENTIFIER, uid),
                // Key Wrapping Specification absent; ask for the raw format.
                Ttlv::enumeration(tag::KEY_FORMAT_TYPE, FORMAT_RAW),
            ],
        )?;
        let block = r
            .find(tag::SYMMETRIC_KEY)
            .and_then(|k| k.find(tag::KEY_BLOCK))
            .ok_or(failed("the KMIP object is not a symmetric key"))?;
        if block.find(tag::KEY_FORMAT_TYPE).and_then(Ttlv::as_enum) != Some(FORMAT_RAW) {
            return Err(failed("the KMIP server returned the key in a format other than Raw"));
        }
        if block.find(tag::CRYPTOGRAPHIC_ALGORITHM).and_then(Ttlv::as_enum).is_some_and(|a| a != ALGORITHM_AES) {
            return Err(Error::InvalidKey("the KMIP key is not an AES key"));
        }
        let m = block
            .find(tag::KEY_VALUE)
            .and_then(|v| v.find(tag::KEY_MATERIAL).or(Some(v)))
            .and_then(Ttlv::as_bytes)
            .ok_or(failed("the KMIP key value holds no key material"))?;
        if m.len() != 32 {
            return Err(Error::InvalidKey("the KMIP key is not 32 bytes (AES-256)"));
        }
        Ok(Zeroizing::new(m.to_vec()))
    }

    /// Revoke (reason: cessation of operation).
    pub fn revoke(&self, uid: &str) -> Result<()> {
        self.call(
            op::REVOKE,
            vec![
                Ttlv::text(tag::UNIQUE_IDENTIFIER, uid),
                Ttlv::structure(tag::REVOCATION_REASON, vec![Ttlv::enumeration(tag::REVOCATION_REASON_CODE, REVOKE_CESSATION)]),
            ],
        )
        .map(|_| ())
    }

    /// Destroy.
    pub fn destroy(&self, uid: &str) -> Result<()> {
        self.call(op::DESTROY, vec![Ttlv::text(tag::UNIQUE_IDENTIFIER, uid)]).map(|_| ())
    }

    fn gcm_params() -> Ttlv {
        Ttlv::structure(
            tag::CRYPTOGRAPHIC_PARAMETERS,
            vec![
                Ttlv::enumeration(tag::BLOCK_CIPHER_MODE, MODE_GCM),
                Ttlv::enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, ALGORITHM_AES),
                // Fields in the specification's order (strict servers read them in that order).
                Ttlv::boolean(tag::RANDOM_IV, true),
                Ttlv::int(tag::TAG_LENGTH, 16),
            ],
        )
    }

    /// Encrypt with AES-GCM on the server (the server chooses the IV): (iv, ciphertext, tag).
    pub fn encrypt_gcm(&self, uid: &str, data: &[u8], aad: &[u8]) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let r = self.call(
            op::ENCRYPT,
            vec![
                Ttlv::text(tag::UNIQUE_IDENTIFIER, uid),
                Self::gcm_params(),
                Ttlv::bytes(tag::DATA, data),
                Ttlv::bytes(tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad),
            ],
        )?;
        let get = |t| r.find(t).and_then(Ttlv::as_bytes).map(<[u8]>::to_vec);
        let ct = get(tag::DATA).ok_or(failed("the KMIP Encrypt response holds no data"))?;
        let iv = get(tag::IV_COUNTER_NONCE).ok_or(failed("the KMIP Encrypt response holds no IV"))?;
        let tg = get(tag::AUTHENTICATED_ENCRYPTION_TAG).ok_or(failed("the KMIP Encrypt response holds no GCM tag"))?;
        if ct.len() != data.len() || tg.len() != 16 || iv.is_empty() || iv.len() > 64 {
            return Err(failed("the KMIP Encrypt response has unexpected lengths"));
        }
        Ok((iv, ct, tg))
    }

    /// Decrypt with AES-GCM on the server. A tag that does not verify is
    /// [`Error::AuthenticationFailed`] when the server says so (Cryptographic Failure).
    pub fn decrypt_gcm(&self, uid: &str, iv: &[u8], ct: &[u8], gcm_tag: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut params = Self::gcm_params();
        if let Value::Structure(items) = &mut params.value {
            items.retain(|i| i.tag != tag::RANDOM_IV);
        }
        let r = self.call(
            op::DECRYPT,
            vec![
                Ttlv::text(tag::UNIQUE_IDENTIFIER, uid),
                params,
                Ttlv::bytes(tag::DATA, ct),
                Ttlv::bytes(tag::IV_COUNTER_NONCE, iv),
                Ttlv::bytes(tag::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad),
                Ttlv::bytes(tag::AUTHENTICATED_ENCRYPTION_TAG, gcm_tag),
            ],
        )
        .map_err(|e| match e {
            // The server answered, and refused to decrypt a well-formed request: the bytes do not
            // authenticate under its key. KMIP says Cryptographic Failure; PyKMIP (and some
            // others) answer General Failure for a GCM tag mismatch.
            Error::ProviderFailed(m) if m == reason_name(0x0A) => {
                Error::AuthenticationFailed("the KMIP server could not authenticate the wrapped key (Cryptographic Failure)")
            }
            Error::ProviderFailed(m) if m == reason_name(0x100) => {
                Error::AuthenticationFailed("the KMIP server could not decrypt the wrapped key (General Failure): tampered, or not made by this key")
            }
            e => e,
        })?;
        let pt = r.find(tag::DATA).and_then(Ttlv::as_bytes).ok_or(failed("the KMIP Decrypt response holds no data"))?;
        Ok(Zeroizing::new(pt.to_vec()))
    }
}

fn uid_of(r: &Ttlv) -> Result<String> {
    r.find(tag::UNIQUE_IDENTIFIER)
        .and_then(Ttlv::as_text)
        .map(str::to_owned)
        .ok_or(failed("the KMIP response holds no unique identifier"))
}

/// Checks the response header and the one batch item; returns the response payload (an empty
/// structure when absent). A failed operation is [`Error::ProviderFailed`] naming the KMIP
/// result reason.
pub fn parse_response(resp: Ttlv, operation: u32) -> Result<Ttlv> {
    if resp.tag != tag::RESPONSE_MESSAGE || resp.find(tag::RESPONSE_HEADER).is_none() {
        return Err(failed("the KMIP server sent something that is not a KMIP response message"));
    }
    let mut items = resp.find_all(tag::BATCH_ITEM);
    let item = items.next().ok_or(failed("the KMIP response holds no batch item"))?;
    if items.next().is_some() {
        return Err(failed("the KMIP response holds more batch items than requested"));
    }
    if let Some(o) = item.find(tag::OPERATION).and_then(Ttlv::as_enum) {
        if o != operation {
            return Err(failed("the KMIP response answers another operation"));
        }
    }
    match item.find(tag::RESULT_STATUS).and_then(Ttlv::as_enum) {
        Some(0) => {}
        Some(_) => {
            let reason = item.find(tag::RESULT_REASON).and_then(Ttlv::as_enum).unwrap_or(0x100);
            return Err(Error::ProviderFailed(reason_name(reason)));
        }
        None => return Err(failed("the KMIP response holds no result status")),
    }
    Ok(item.find(tag::RESPONSE_PAYLOAD).cloned().unwrap_or_else(|| Ttlv::structure(tag::RESPONSE_PAYLOAD, Vec::new())))
}

fn io_error(e: &std::io::Error) -> Error {
    use std::io::ErrorKind::*;
    if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls_rustls_error(t);
    }
    match e.kind() {
        WouldBlock | TimedOut => failed("the KMIP server did not answer in time (I/O timeout)"),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => failed("the KMIP server closed the connection"),
        _ => failed("I/O error talking to the KMIP server"),
    }
}

fn tls_rustls_error(e: &rustls::Error) -> Error {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(_) => failed("TLS: the KMIP server certificate is not trusted (wrong CA, name or validity)"),
        E::AlertReceived(rustls::AlertDescription::HandshakeFailure) => {
            failed("TLS: the KMIP server refused the handshake (no FIPS-approved cipher suite or group in common)")
        }
        E::AlertReceived(rustls::AlertDescription::BadCertificate)
        | E::AlertReceived(rustls::AlertDescription::UnknownCA)
        | E::AlertReceived(rustls::AlertDescription::CertificateUnknown)
        | E::AlertReceived(rustls::AlertDescription::DecryptError) => failed("TLS: the KMIP server refused the client certificate"),
        E::AlertReceived(_) => failed("TLS: the KMIP server sent a fatal alert"),
        E::PeerIncompatible(_) => failed("TLS: the KMIP server offers no FIPS-approved protocol version, cipher suite or group"),
        E::PeerMisbehaved(_) => failed("TLS: the KMIP server violated the protocol"),
        _ => failed("TLS error on the KMIP connection"),
    }
}

fn tls_error(e: &std::io::Error) -> Error {
    io_error(e)
}
