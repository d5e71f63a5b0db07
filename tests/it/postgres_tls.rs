//! Postgres over TLS, against a private cluster of our own that presents a certificate
//! signed by a CA made for the test: `DATABASE_URL` with `sslmode=verify-full` and that CA
//! in `sslrootcert` gives the platform's pools encrypted connections to a verified server;
//! a server the CA did not sign is refused, and saying so names the certificate.

use std::net::{IpAddr, Ipv4Addr};

use campus_devstack::PrivatePostgres;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use sqlx::postgres::PgPoolOptions;

/// A CA (certificate, key) and a server certificate for 127.0.0.1 and localhost it signed.
fn certificates() -> (rcgen::Certificate, KeyPair, rcgen::Certificate, KeyPair) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "County Campus Cloud test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::default();
    server
        .distinguished_name
        .push(DnType::CommonName, "postgres");
    server.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().unwrap()),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    let server = server.signed_by(&server_key, &ca, &ca_key).unwrap();
    (ca, ca_key, server, server_key)
}

#[tokio::test]
async fn the_platform_reaches_postgres_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _ca_key, server, server_key) = certificates();
    let pg = PrivatePostgres::start_with_tls(
        &dir.path().join("pg"),
        &server.pem(),
        &server_key.serialize_pem(),
    )
    .unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let url = |mode: &str, root: &std::path::Path| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode={mode}&sslrootcert={}",
            pg.port(),
            root.display()
        )
    };

    // The platform's own connection options, as `campus serve` builds them.
    let opts = campus::runtime::pg_options(&url("verify-full", &ca_file), false).unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await
        .expect("a verified TLS connection");
    let (ssl, version): (bool, String) =
        sqlx::query_as("select ssl, version from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(ssl, "the connection is encrypted");
    assert!(version.starts_with("TLSv1."), "{version}");
    pool.close().await;

    // Without TLS the same server is reachable too (sslmode=disable): so the check above
    // really tells the two apart.
    let plain = campus::runtime::pg_options(
        &format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            pg.port()
        ),
        false,
    )
    .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(plain)
        .await
        .unwrap();
    let ssl: bool = sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!ssl);
    pool.close().await;

    // A CA that did not sign the server's certificate: refused.
    let (other_ca, ..) = certificates();
    let other_file = dir.path().join("other-ca.pem");
    std::fs::write(&other_file, other_ca.pem()).unwrap();
    let refused = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(campus::runtime::pg_options(&url("verify-full", &other_file), false).unwrap())
        .await
        .expect_err("an unverified server is refused");
    let text = refused.to_string().to_lowercase();
    assert!(
        text.contains("certificate") || text.contains("tls"),
        "{text}"
    );
}
