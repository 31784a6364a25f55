//! Days until a TLS certificate expires: the one a server presents, or those in a PEM file.
//!
//! The handshake accepts any certificate: the monitor's job is to say how long until expiry,
//! and an expired or self-signed certificate must still be read (a verifying handshake would
//! fail exactly when the answer matters most). Nothing is sent after the handshake.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_cert::der::Decode;

use crate::error::ProbeError;
use crate::watch::{Reading, number};

const DAY_SECS: f64 = 86_400.0;

/// What a certificate says about its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertExpiry {
    /// The end of its validity.
    pub not_after: SystemTime,
    /// Its subject, as an RFC 4514 string.
    pub subject: String,
}

/// Reads the `notAfter` and subject of a DER certificate.
pub fn cert_expiry(der: &[u8], source: &str) -> Result<CertExpiry, ProbeError> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| ProbeError::Certificate {
        source_name: source.to_owned(),
        reason: e.to_string(),
    })?;
    let tbs = &cert.tbs_certificate;
    Ok(CertExpiry {
        not_after: UNIX_EPOCH + tbs.validity.not_after.to_unix_duration(),
        subject: tbs.subject.to_string(),
    })
}

/// The reading for a certificate at time `now`: days left (negative once expired).
pub fn reading(c: &CertExpiry, source: &str, now: SystemTime) -> Reading {
    let days = match c.not_after.duration_since(now) {
        Ok(left) => left.as_secs_f64() / DAY_SECS,
        Err(past) => -past.duration().as_secs_f64() / DAY_SECS,
    };
    let when = humantime::format_rfc3339_seconds(c.not_after);
    let detail = if days < 0.0 {
        format!(
            "the certificate of {source} ({}) expired on {when}",
            c.subject
        )
    } else {
        format!(
            "the certificate of {source} ({}) expires in {} days, on {when}",
            c.subject,
            number(days)
        )
    };
    Reading::new(days, detail)
        .var("source", source)
        .var("days_left", number(days))
        .var("not_after", when)
        .var("subject", &c.subject)
}

/// Days left of the earliest-expiring certificate in a PEM file.
pub fn file(path: &Path, now: SystemTime) -> Result<Reading, ProbeError> {
    let source = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ProbeError::io("read", path, e))?;
    let mut earliest: Option<CertExpiry> = None;
    for der in CertificateDer::pem_slice_iter(&bytes) {
        let der = der.map_err(|e| ProbeError::Certificate {
            source_name: source.clone(),
            reason: e.to_string(),
        })?;
        let c = cert_expiry(&der, &source)?;
        if earliest.as_ref().is_none_or(|e| c.not_after < e.not_after) {
            earliest = Some(c);
        }
    }
    let c = earliest.ok_or_else(|| ProbeError::Certificate {
        source_name: source.clone(),
        reason: "no CERTIFICATE block in the file".into(),
    })?;
    Ok(reading(&c, &source, now))
}

/// Days left of the certificate a server presents for `target`.
pub async fn url(target: &str, timeout: Duration, now: SystemTime) -> Result<Reading, ProbeError> {
    let (host, port) =
        crate::spec::split_host_port(target).map_err(|e| ProbeError::network(target, e))?;
    let der = tokio::time::timeout(timeout, leaf_certificate(&host, port))
        .await
        .map_err(|_| {
            ProbeError::network(
                target,
                format!("no handshake within {} ms", timeout.as_millis()),
            )
        })??;
    let c = cert_expiry(&der, target)?;
    Ok(reading(&c, target, now))
}

async fn leaf_certificate(host: &str, port: u16) -> Result<CertificateDer<'static>, ProbeError> {
    let target = format!("{host}:{port}");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::network(&target, e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    let name =
        ServerName::try_from(host.to_owned()).map_err(|e| ProbeError::network(&target, e))?;
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| ProbeError::network(&target, e))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| ProbeError::network(&target, e))?;
    let (_, session) = tls.get_ref();
    session
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
        .ok_or_else(|| ProbeError::network(&target, "the server presented no certificate"))
}

/// A verifier that accepts any certificate (see the module comment) but still checks the
/// handshake signatures, so what is read is what the server holds the key to.
#[derive(Debug)]
struct ReadOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
