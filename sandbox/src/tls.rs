//! HTTPS in front of a sandbox server, with a certificate authority of the sandbox's own.
//!
//! Self-hosted Gitea and Forgejo are usually served over https by a reverse proxy (nginx, Traefik,
//! Caddy) with a certificate from an internal CA; Gitea itself then speaks plain HTTP behind it. The
//! front does the same: it terminates TLS with a certificate issued by a fresh CA and forwards each
//! connection's bytes unchanged to the plain loopback server, so git's smart HTTP and the API behave
//! exactly as without it. The CA is generated per front and is not trusted by anything until a client
//! is given its PEM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

/// A running TLS front; stops accepting when dropped.
#[derive(Debug)]
pub struct TlsFront {
    port: u16,
    ca_pem: String,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    /// Starts a front on `127.0.0.1` (ephemeral port) forwarding to `target`. The certificate names
    /// `localhost`, `127.0.0.1` and every name in `hosts` (for tests that reach it through an
    /// /etc/hosts entry).
    ///
    /// # Errors
    /// When the certificates cannot be made or the port cannot be bound.
    pub async fn start(target: SocketAddr, hosts: &[&str]) -> anyhow::Result<TlsFront> {
        let ca_key = KeyPair::generate().context("CA key")?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "gitops-sandbox test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).context("CA certificate")?;

        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        names.extend(hosts.iter().map(|h| (*h).to_owned()));
        let leaf_key = KeyPair::generate().context("server key")?;
        let mut leaf = CertificateParams::new(names).context("server params")?;
        leaf.distinguished_name
            .push(DnType::CommonName, "gitops-sandbox");
        let leaf_cert = leaf
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .context("server certificate")?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone(), ca_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .context("TLS server config")?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A failed handshake (a client that does not trust the CA) just ends the connection,
                    // as a real proxy does; the client reports the certificate error.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(TlsFront {
            port,
            ca_pem: ca_cert.pem(),
            task,
        })
    }

    /// The front's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA certificate (PEM) that issued the front's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
