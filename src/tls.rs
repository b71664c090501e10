//! Private certificate authorities: `server_ca` (the git server, for its API and for git) and the PEM
//! inputs they are given as. The HTTP clients trust the Mozilla roots (webpki) plus these; git trusts
//! the system bundle plus these, through `GIT_SSL_CAINFO` in its environment.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Reads a PEM input: the PEM text itself (starting with `-----BEGIN`) or the path of a file holding it.
///
/// # Errors
/// A message naming `input` when the file cannot be read.
fn read_pem_input(input: &str, value: &str) -> Result<Vec<u8>, String> {
    let value = value.trim();
    if value.starts_with("-----BEGIN") {
        Ok(value.as_bytes().to_vec())
    } else {
        std::fs::read(value).map_err(|e| format!("{input}: cannot read file {value:?} ({e})"))
    }
}

/// Certificate authorities trusted for one server besides the public roots. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ExtraRoots {
    pem: Arc<Vec<u8>>,
    certs: Vec<reqwest::Certificate>,
    /// The bundle handed to git, written on first use and removed with the last clone.
    git_bundle: Arc<OnceLock<Result<tempfile::TempPath, String>>>,
}

impl ExtraRoots {
    /// Parses an input (PEM text or file path, see [`read_pem_input`]).
    ///
    /// # Errors
    /// A message naming `input`: unreadable file, not PEM, no certificate in it.
    pub fn from_input(input: &str, value: &str) -> Result<ExtraRoots, String> {
        let pem = read_pem_input(input, value)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| format!("{input}: not a valid PEM certificate bundle"))?;
        if certs.is_empty() {
            return Err(format!("{input}: no certificate found in the PEM data"));
        }
        Ok(ExtraRoots {
            pem: Arc::new(pem),
            certs,
            git_bundle: Arc::default(),
        })
    }

    /// Adds these authorities to a client's roots.
    pub fn add_to(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        for cert in &self.certs {
            builder = builder.add_root_certificate(cert.clone());
        }
        builder
    }

    /// A CA file for git (`GIT_SSL_CAINFO`): the system bundle git would otherwise use, then these
    /// authorities. `GIT_SSL_CAINFO` replaces git's default store, hence the system bundle in front.
    ///
    /// # Errors
    /// When the temporary file cannot be written.
    pub fn git_ca_file(&self) -> Result<PathBuf, String> {
        self.git_bundle
            .get_or_init(|| {
                let mut bundle = system_bundle()
                    .and_then(|p| std::fs::read(p).ok())
                    .unwrap_or_default();
                if !bundle.is_empty() && !bundle.ends_with(b"\n") {
                    bundle.push(b'\n');
                }
                bundle.extend_from_slice(&self.pem);
                bundle.push(b'\n');
                let file = tempfile::Builder::new()
                    .prefix("gitops-deploy-ca-")
                    .suffix(".pem")
                    .tempfile()
                    .map_err(|e| format!("cannot create the CA bundle for git: {e}"))?;
                std::fs::write(file.path(), &bundle)
                    .map_err(|e| format!("cannot write the CA bundle for git: {e}"))?;
                Ok(file.into_temp_path())
            })
            .as_ref()
            .map(|p| p.to_path_buf())
            .map_err(Clone::clone)
    }
}

/// The CA bundle git uses by default: `GIT_SSL_CAINFO`, `SSL_CERT_FILE` (the action image sets both),
/// else Debian's and Alpine's standard path.
fn system_bundle() -> Option<PathBuf> {
    ["GIT_SSL_CAINFO", "SSL_CERT_FILE"]
        .iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from)
        .chain([PathBuf::from("/etc/ssl/certs/ca-certificates.crt")])
        .find(|p| Path::new(p).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_inputs_are_text_or_files_and_errors_name_the_input() {
        assert_eq!(
            read_pem_input("server_ca", "  -----BEGIN X-----\n").unwrap(),
            b"-----BEGIN X-----"
        );
        let err = read_pem_input("server_ca", "/nonexistent/ca.pem").unwrap_err();
        assert!(
            err.starts_with("server_ca: cannot read file \"/nonexistent/ca.pem\""),
            "{err}"
        );
        let err = ExtraRoots::from_input(
            "server_ca",
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert_eq!(err, "server_ca: not a valid PEM certificate bundle");
        let err = ExtraRoots::from_input("server_ca", "-----BEGIN NOTHING-----").unwrap_err();
        assert!(err.starts_with("server_ca: "), "{err}");
    }
}
