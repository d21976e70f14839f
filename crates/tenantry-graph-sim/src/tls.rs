//! HTTPS for the simulator, because Microsoft's SDKs refuse plain-HTTP authorities. The
//! certificate comes from given PEM files, or is generated at start: a throwaway CA and a
//! leaf for `localhost` and `127.0.0.1` signed by it. The CA's PEM is written to a file so
//! clients can trust it (`REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// Where the simulator's TLS identity comes from.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Certificate chain and key (PEM); generated when absent.
    pub cert_and_key_pem: Option<(String, String)>,
    /// Where to write the PEM clients should trust; a temporary file when absent.
    pub ca_out: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the simulator's certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("reading the certificate or key: {0}")]
    Pem(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The server's identity: its chain and key, and the PEM a client should trust.
pub struct Identity {
    pub chain_pem: String,
    pub key_pem: String,
    pub trust_pem: String,
}

/// A CA and a `localhost`/`127.0.0.1` leaf signed by it.
pub fn generate() -> Result<Identity, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Tenantry Graph simulator CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer)?;
    Ok(Identity {
        chain_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
        trust_pem: ca_cert.pem(),
    })
}

pub fn acceptor(identity: &Identity) -> Result<TlsAcceptor, TlsError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(identity.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Pem(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

pub fn write_trust(pem: &str, path: &Path) -> Result<(), TlsError> {
    std::fs::write(path, pem).map_err(|source| TlsError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Accepts TLS connections and serves `app` on each until `stopped` fires.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = TowerToHyperService::new(app);
                    let _ = Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await;
                });
            }
            _ = &mut stopped => break,
        }
    }
}
