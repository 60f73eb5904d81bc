//! The C boundary of the built-in KMIP key provider (`src/provider/kmip/`): keyrings whose
//! versions are AES-256 keys held by a KMIP key manager, reached over FIPS TLS.

use super::keyring::cellar_keyring;
use super::{cellar_status, ffi_boundary, free_handle, handle, in_slice, new_handle, non_null, out_ptr, write_buffer, write_out, Castable, FfiResult};
use crate::error::Error;
use crate::keyring::Keyring;
use crate::provider::kmip::{KmipClient, KmipConfig, KmipMode, KmipSelector};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// KMIP mode: Cellar Gets the key's material from the server when the version is attached
/// (created, adopted, unlocked) and wraps data keys inside its own FIPS module with AES-KWP
/// (blobs byte-identical to a local version's; the indicator reports 1). The server key's usage
/// mask must allow Get (Export).
pub const CELLAR_KMIP_FETCH: u32 = 1;
/// KMIP mode: the server wraps and unwraps (KMIP Encrypt/Decrypt, AES-256-GCM with a server IV)
/// and the tenant key never leaves it; the indicator reports 0 (the server's module did the
/// cryptography).
pub const CELLAR_KMIP_DELEGATED: u32 = 2;

/// A KMIP client: TLS 1.3/1.2 with mutual certificate authentication through rustls on the
/// AWS-LC FIPS module, a bounded pool of connections, timeouts. Thread-safe: any number of
/// threads may use one client (and the keyring versions made with it) at once. Keyring versions
/// keep their own reference to the client, so `cellar_kmip_client_free` may be called as soon
/// as the caller no longer needs the handle; connections close when the last user is gone.
pub struct cellar_kmip_client {
    _private: [u8; 0],
}

impl Castable for cellar_kmip_client {
    type Inner = Arc<KmipClient>;
    const MAGIC: u64 = 0x6365_6c6c_6b6d_6970; // "cellkmip"
    const NAME: &'static str = "cellar_kmip_client";
}

/// Where a KMIP server is and how to authenticate to it. Strings are UTF-8 bytes with their
/// lengths (no NUL needed), each at most 4096 bytes. The struct and its buffers need only live
/// for the `cellar_kmip_client_new` call (Cellar reads the PEM files then).
#[repr(C)]
pub struct cellar_kmip_config {
    /// Server host name or address.
    pub host: *const u8,
    /// Length of `host` (1 to 4096).
    pub host_len: usize,
    /// TCP port (KMIP's registered port is 5696).
    pub port: u16,
    /// Name the server certificate must carry (DNS name or IP address); length 0: `host`.
    pub server_name: *const u8,
    /// Length of `server_name`.
    pub server_name_len: usize,
    /// Path of the client certificate chain (PEM).
    pub client_cert_path: *const u8,
    /// Length of `client_cert_path`.
    pub client_cert_path_len: usize,
    /// Path of the client private key (PEM: PKCS#8, SEC1 or PKCS#1).
    pub client_key_path: *const u8,
    /// Length of `client_key_path`.
    pub client_key_path_len: usize,
    /// Path of the CA certificates trusted for the server certificate (PEM). Only these are
    /// trusted (no system store).
    pub ca_path: *const u8,
    /// Length of `ca_path`.
    pub ca_path_len: usize,
    /// TCP connect timeout in milliseconds (0: 5000).
    pub connect_timeout_ms: u32,
    /// Timeout of every read and write, and of waiting for a free pooled connection, in
    /// milliseconds (0: 5000). A server that does not answer in time fails the call with
    /// `CELLAR_ERR_PROVIDER_FAILED`; no call blocks longer than about connect + 2 x I/O timeout.
    pub io_timeout_ms: u32,
    /// Most connections open at once (0: 4; at most 64). Threads beyond it wait for one.
    pub max_connections: u32,
}

fn utf8<'a>(p: *const u8, len: usize, name: &'static str) -> FfiResult<&'a str> {
    if len > 4096 {
        return Err(Error::InvalidArgument("KMIP configuration strings are at most 4096 bytes").into());
    }
    let b = in_slice(p, len, name)?;
    core::str::from_utf8(b).map_err(|_| Error::InvalidArgument("KMIP names and paths must be UTF-8").into())
}

fn mode(m: u32) -> FfiResult<KmipMode> {
    Ok(KmipMode::from_u32(m)?)
}

fn selector<'a>(name: *const u8, name_len: usize, uid: *const u8, uid_len: usize) -> FfiResult<KmipSelector<'a>> {
    match (name_len, uid_len) {
        (0, 0) => Err(Error::InvalidArgument("give the KMIP key's name or its unique identifier").into()),
        (_, 0) => Ok(KmipSelector::Name(utf8(name, name_len, "key_name")?)),
        (0, _) => Ok(KmipSelector::Uid(utf8(uid, uid_len, "key_uid")?)),
        _ => Err(Error::InvalidArgument("give the KMIP key's name or its unique identifier, not both").into()),
    }
}

/// Makes a KMIP client from `config`: reads the PEM files and builds a TLS configuration that
/// rustls reports as FIPS (`CELLAR_ERR_NOT_FIPS` otherwise). No connection is made until the
/// first operation. Unreadable files, a key that does not match its certificate, an empty
/// host or a zero port: `CELLAR_ERR_INVALID_ARGUMENT`. Free with `cellar_kmip_client_free`.
#[no_mangle]
pub extern "C" fn cellar_kmip_client_new(config: *const cellar_kmip_config, out_client: *mut *mut cellar_kmip_client) -> cellar_status {
    ffi_boundary!("cellar_kmip_client_new", {
        let out = out_ptr(out_client, "out_client")?;
        let c = non_null(config, "config")?;
        // SAFETY: non-NULL; the caller promises a valid struct for the call's duration.
        let c = unsafe { &*c };
        let host = utf8(c.host, c.host_len, "config->host")?;
        let server_name = utf8(c.server_name, c.server_name_len, "config->server_name")?;
        let path = |p, n, what| utf8(p, n, what).map(PathBuf::from);
        let mut cfg = KmipConfig::new(
            host,
            c.port,
            path(c.client_cert_path, c.client_cert_path_len, "config->client_cert_path")?,
            path(c.client_key_path, c.client_key_path_len, "config->client_key_path")?,
            path(c.ca_path, c.ca_path_len, "config->ca_path")?,
        );
        if !server_name.is_empty() {
            cfg.server_name = Some(server_name.to_owned());
        }
        if c.connect_timeout_ms != 0 {
            cfg.connect_timeout = Duration::from_millis(u64::from(c.connect_timeout_ms));
        }
        if c.io_timeout_ms != 0 {
            cfg.io_timeout = Duration::from_millis(u64::from(c.io_timeout_ms));
        }
        if c.max_connections != 0 {
            cfg.max_connections = c.max_connections as usize;
        }
        let client = KmipClient::new(cfg)?;
        write_out(out, new_handle::<cellar_kmip_client>(Arc::new(client)));
        Ok(())
    })
}

/// Frees a client handle (NULL does nothing). Keyring versions made with it keep working.
#[no_mangle]
pub extern "C" fn cellar_kmip_client_free(client: *mut cellar_kmip_client) {
    super::boundary_value((), || free_handle(client))
}

/// What a KMIP client negotiated (`cellar_kmip_client_check`): public facts only.
#[repr(C)]
pub struct cellar_kmip_status {
    /// 1 when rustls reports the TLS connection as FIPS (`ClientConnection::fips()`: the FIPS
    /// crypto provider of the AWS-LC module and a FIPS-approved configuration), else 0.
    pub tls_fips: i32,
    /// TLS version on the wire: 0x0304 (TLS 1.3) or 0x0303 (TLS 1.2).
    pub tls_version: u16,
    /// The negotiated cipher suite's IANA code (for example 0x1302 TLS_AES_256_GCM_SHA384).
    pub cipher_suite: u16,
    /// KMIP protocol version in use: `major << 16 | minor`.
    pub kmip_version: u32,
}

/// Connects (or reuses a connection), negotiates the KMIP protocol version (Discover Versions)
/// and reports what was negotiated: the check an operator runs to see that TLS to the key
/// manager runs inside the FIPS module. Errors: `CELLAR_ERR_PROVIDER_FAILED` (unreachable,
/// TLS refused: last-error says why), `CELLAR_ERR_NOT_FIPS`.
#[no_mangle]
pub extern "C" fn cellar_kmip_client_check(client: *const cellar_kmip_client, out_status: *mut cellar_kmip_status) -> cellar_status {
    ffi_boundary!("cellar_kmip_client_check", {
        let out = out_ptr(out_status, "out_status")?;
        let c = handle::<cellar_kmip_client>(client, "client")?;
        let (major, minor) = c.protocol_version()?;
        let t = c.tls_info();
        write_out(
            out,
            cellar_kmip_status {
                tls_fips: i32::from(t.fips),
                tls_version: t.protocol_code,
                cipher_suite: t.suite_code,
                kmip_version: (major as u32) << 16 | (minor as u32 & 0xFFFF),
            },
        );
        Ok(())
    })
}

/// Creates a keyring whose version 1 is a new AES-256 key created on the server under
/// `key_name` (KMIP Create, then Activate) in `mode` (`CELLAR_KMIP_FETCH` or
/// `CELLAR_KMIP_DELEGATED`). Unknown mode: `CELLAR_ERR_INVALID_ARGUMENT`; server errors:
/// `CELLAR_ERR_PROVIDER_FAILED` with the KMIP result reason in the last-error text.
#[no_mangle]
pub extern "C" fn cellar_keyring_new_kmip(
    client: *const cellar_kmip_client,
    kmip_mode: u32,
    key_name: *const u8,
    key_name_len: usize,
    out_keyring: *mut *mut cellar_keyring,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_new_kmip", {
        let out = out_ptr(out_keyring, "out_keyring")?;
        let c = handle::<cellar_kmip_client>(client, "client")?;
        let m = mode(kmip_mode)?;
        let name = utf8(key_name, key_name_len, "key_name")?;
        let kr = Keyring::new_kmip(c, m, name)?;
        write_out(out, new_handle::<cellar_keyring>(kr));
        Ok(())
    })
}

/// Creates a keyring whose version 1 is an existing server key (bring your own key), found by
/// `key_name` (KMIP Locate) or by `key_uid` (its Unique Identifier): exactly one has a non-zero
/// length. The key must be an active AES-256 key: pre-active, revoked (deactivated,
/// compromised) keys are `CELLAR_ERR_INVALID_KEY`, destroyed or absent keys
/// `CELLAR_ERR_KEY_NOT_FOUND`, several keys with the name `CELLAR_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn cellar_keyring_adopt_kmip(
    client: *const cellar_kmip_client,
    kmip_mode: u32,
    key_name: *const u8,
    key_name_len: usize,
    key_uid: *const u8,
    key_uid_len: usize,
    out_keyring: *mut *mut cellar_keyring,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_adopt_kmip", {
        let out = out_ptr(out_keyring, "out_keyring")?;
        let c = handle::<cellar_kmip_client>(client, "client")?;
        let m = mode(kmip_mode)?;
        let sel = selector(key_name, key_name_len, key_uid, key_uid_len)?;
        let kr = Keyring::adopt_kmip(c, m, sel)?;
        write_out(out, new_handle::<cellar_keyring>(kr));
        Ok(())
    })
}

/// Rotates to a new server key (as `cellar_keyring_new_kmip`); writes the new version to
/// `*out_version`. Locked: `CELLAR_ERR_TENANT_LOCKED`.
#[no_mangle]
pub extern "C" fn cellar_keyring_rotate_kmip(
    keyring: *mut cellar_keyring,
    client: *const cellar_kmip_client,
    kmip_mode: u32,
    key_name: *const u8,
    key_name_len: usize,
    out_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_rotate_kmip", {
        let out = out_ptr(out_version, "out_version")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let c = handle::<cellar_kmip_client>(client, "client")?;
        let m = mode(kmip_mode)?;
        let name = utf8(key_name, key_name_len, "key_name")?;
        write_out(out, kr.rotate_kmip(c, m, name)?);
        Ok(())
    })
}

/// Rotates to an existing server key (as `cellar_keyring_adopt_kmip`); writes the new version
/// to `*out_version`. A key already in the keyring: `CELLAR_ERR_INVALID_KEY`.
#[no_mangle]
pub extern "C" fn cellar_keyring_rotate_kmip_adopt(
    keyring: *mut cellar_keyring,
    client: *const cellar_kmip_client,
    kmip_mode: u32,
    key_name: *const u8,
    key_name_len: usize,
    key_uid: *const u8,
    key_uid_len: usize,
    out_version: *mut u32,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_rotate_kmip_adopt", {
        let out = out_ptr(out_version, "out_version")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let c = handle::<cellar_kmip_client>(client, "client")?;
        let m = mode(kmip_mode)?;
        let sel = selector(key_name, key_name_len, key_uid, key_uid_len)?;
        write_out(out, kr.rotate_kmip_adopt(c, m, sel)?);
        Ok(())
    })
}

/// Reconnects every KMIP version that is not attached, through `client`: after
/// `cellar_keyring_lock` (which drops each version's connection to its key and, in fetch mode,
/// wipes the fetched material) or after `cellar_keyring_import` (exports record a KMIP version
/// as a reference: its unique identifier and mode, never material). Each key's state is checked
/// first (revoked: `CELLAR_ERR_INVALID_KEY`; destroyed: `CELLAR_ERR_KEY_NOT_FOUND`) and its key
/// id must match its version; nothing is attached unless all pass. Writes how many versions were
/// attached to `*out_attached`.
#[no_mangle]
pub extern "C" fn cellar_keyring_unlock_kmip(
    keyring: *mut cellar_keyring,
    client: *const cellar_kmip_client,
    out_attached: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_unlock_kmip", {
        let out = out_ptr(out_attached, "out_attached")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let c = handle::<cellar_kmip_client>(client, "client")?;
        write_out(out, kr.unlock_kmip(c)?);
        Ok(())
    })
}

/// Retires `version` like `cellar_keyring_retire`; with `CELLAR_KEYRING_RETIRE_DESTROY` it first
/// revokes and destroys the key on the KMIP server (KMIP Revoke, reason Cessation of Operation,
/// then Destroy; the version must be attached, else `CELLAR_ERR_TENANT_LOCKED`). If the server
/// refuses, nothing is retired. Irreversible: every blob under that key, in any keyring or
/// export, is lost. With `flags` 0 the server key stays.
#[no_mangle]
pub extern "C" fn cellar_keyring_retire_kmip(keyring: *mut cellar_keyring, version: u32, flags: u32) -> cellar_status {
    ffi_boundary!("cellar_keyring_retire_kmip", {
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        if kr.kmip_reference(version)?.is_none() {
            return Err(Error::InvalidArgument("that version is not held by a KMIP server").into());
        }
        match flags {
            0 => kr.retire(version)?,
            super::pkcs11::CELLAR_KEYRING_RETIRE_DESTROY => kr.retire_destroying(version)?,
            _ => return Err(Error::InvalidArgument("unknown cellar_keyring_retire_kmip flags").into()),
        }
        Ok(())
    })
}

/// Writes the KMIP unique identifier of `version` (UTF-8, no NUL) to `out` and its mode
/// (`CELLAR_KMIP_FETCH` or `CELLAR_KMIP_DELEGATED`) to `*out_mode`: the status call that says
/// which versions a key manager holds. A version not held by KMIP: `CELLAR_ERR_INVALID_ARGUMENT`;
/// unknown version: `CELLAR_ERR_KEY_NOT_FOUND`; `out` too small: `CELLAR_ERR_BUFFER_TOO_SMALL`
/// with the size in `*out_len`. Works while locked.
#[no_mangle]
pub extern "C" fn cellar_keyring_kmip_uid(
    keyring: *const cellar_keyring,
    version: u32,
    out_mode: *mut u32,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> cellar_status {
    ffi_boundary!("cellar_keyring_kmip_uid", {
        let m = out_ptr(out_mode, "out_mode")?;
        let kr = handle::<cellar_keyring>(keyring, "keyring")?;
        let (mode, uid) = kr
            .kmip_reference(version)?
            .ok_or(Error::InvalidArgument("that version is not held by a KMIP server"))?;
        write_buffer(out, out_cap, out_len, uid.as_bytes())?;
        write_out(m, mode as u32);
        Ok(())
    })
}
