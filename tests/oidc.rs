//! The GitHub Actions OIDC token client against a fake of GitHub's token endpoint (the real
//! one exists only inside a runner), plus the relying-party checks the other fakes build on.

mod support;

use serde_json::json;
use sign_action::oidc::{self, IdToken, OidcError, TokenSource};
use support::oidc::{verify_jwt, FakeGitHubOidc, GITHUB_ISSUER};

#[tokio::test]
async fn token_endpoint_round_trip() {
    let fake = FakeGitHubOidc::start().await;
    let token = oidc::request_github_token(&fake.request_url(), &fake.request_token(), "sigstore")
        .await
        .expect("token");
    assert_eq!(fake.requested_audiences(), vec!["sigstore".to_string()]);
    let claims = token.claims();
    assert_eq!(claims.iss, GITHUB_ISSUER);
    assert_eq!(claims.aud, vec!["sigstore".to_string()]);
    assert_eq!(claims.sub, "repo:octo-org/octo-repo:ref:refs/heads/main");
    assert_eq!(
        claims.get_str("job_workflow_ref"),
        Some("octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main")
    );
    // What a relying party would do with it.
    verify_jwt(
        token.expose_secret(),
        &fake.jwks(),
        GITHUB_ISSUER,
        "sigstore",
    )
    .expect("valid");
    assert!(!format!("{token:?}").contains(token.expose_secret()));
}

#[tokio::test]
async fn wrong_request_token_is_reported_with_the_fix() {
    let fake = FakeGitHubOidc::start().await;
    let err = oidc::request_github_token(&fake.request_url(), "not-the-token", "sigstore")
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::Endpoint { status: 401 }), "{err}");
    let message = err.to_string();
    assert!(message.contains("id-token: write"), "{message}");
    assert!(!message.contains("not-the-token"), "{message}");
    assert!(!message.contains(&fake.request_token()), "{message}");
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused() {
    let err = oidc::request_github_token("http://example.com/token?x=1", "t", "sigstore")
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::BadRequestUrl(_)), "{err}");
}

#[tokio::test]
async fn token_file_source() {
    let fake = FakeGitHubOidc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jwt");
    std::fs::write(
        &good,
        format!("{}\n", fake.mint("sts.amazonaws.com", json!({}))),
    )
    .unwrap();
    let token = oidc::obtain(&TokenSource::File(good)).await.expect("token");
    assert_eq!(token.claims().aud, vec!["sts.amazonaws.com".to_string()]);

    let expired = dir.path().join("expired.jwt");
    let past = json!({"exp": 1_000_000_000, "iat": 999_999_000, "nbf": 999_999_000});
    std::fs::write(&expired, fake.mint("sigstore", past)).unwrap();
    let err = oidc::obtain(&TokenSource::File(expired)).await.unwrap_err();
    assert!(
        matches!(err, OidcError::Expired { exp: 1_000_000_000 }),
        "{err}"
    );

    let junk = dir.path().join("junk");
    std::fs::write(&junk, "hello").unwrap();
    let err = oidc::obtain(&TokenSource::File(junk)).await.unwrap_err();
    assert!(matches!(err, OidcError::Malformed(_)), "{err}");
    assert!(!err.to_string().contains("hello"));

    let missing = dir.path().join("missing");
    let err = oidc::obtain(&TokenSource::File(missing)).await.unwrap_err();
    assert!(matches!(err, OidcError::File { .. }), "{err}");
}

/// The only test in this binary that touches the process environment.
#[tokio::test]
async fn environment_source_and_missing_permission() {
    let fake = FakeGitHubOidc::start().await;
    let source = TokenSource::GitHubActions {
        audience: "api://AzureADTokenExchange".into(),
    };
    std::env::remove_var(oidc::ENV_REQUEST_URL);
    std::env::remove_var(oidc::ENV_REQUEST_TOKEN);
    let err = oidc::obtain(&source).await.unwrap_err();
    assert!(matches!(err, OidcError::NotInGitHubActions));
    assert!(err.to_string().contains("permissions: id-token: write"));

    let from_env = TokenSource::Env("SIGN_ACTION_TEST_ID_TOKEN".into());
    std::env::remove_var("SIGN_ACTION_TEST_ID_TOKEN");
    let err = oidc::obtain(&from_env).await.unwrap_err();
    assert!(matches!(err, OidcError::EnvMissing { .. }), "{err}");
    std::env::set_var(
        "SIGN_ACTION_TEST_ID_TOKEN",
        fake.mint("sigstore", json!({})),
    );
    let token = oidc::obtain(&from_env).await.expect("token from env");
    std::env::remove_var("SIGN_ACTION_TEST_ID_TOKEN");
    assert_eq!(token.claims().aud, vec!["sigstore".to_string()]);

    std::env::set_var(oidc::ENV_REQUEST_URL, fake.request_url());
    std::env::set_var(oidc::ENV_REQUEST_TOKEN, fake.request_token());
    let token = oidc::obtain(&source).await.expect("token");
    std::env::remove_var(oidc::ENV_REQUEST_URL);
    std::env::remove_var(oidc::ENV_REQUEST_TOKEN);
    assert_eq!(
        token.claims().aud,
        vec!["api://AzureADTokenExchange".to_string()]
    );
    assert_eq!(
        fake.requested_audiences(),
        vec!["api://AzureADTokenExchange".to_string()]
    );
}

/// The relying-party check the Fulcio/STS/Azure fakes use must itself reject what the real
/// services reject, or the negative tests built on it prove nothing.
#[tokio::test]
async fn relying_party_check_rejects_bad_tokens() {
    let fake = FakeGitHubOidc::start().await;
    let jwks = fake.jwks();
    let ok = fake.mint("sigstore", json!({}));
    assert!(verify_jwt(&ok, &jwks, GITHUB_ISSUER, "sigstore").is_ok());
    let cases = [
        ("forged", fake.mint_forged("sigstore"), "signature"),
        ("wrong audience", ok.clone(), "audience"),
        (
            "expired",
            fake.mint("sigstore", json!({"exp": 1_000_000_000})),
            "expired",
        ),
        (
            "not yet valid",
            fake.mint("sigstore", json!({"nbf": 4_102_444_800_i64})),
            "not valid yet",
        ),
        (
            "other issuer",
            fake.mint("sigstore", json!({"iss": "https://evil.example"})),
            "issuer",
        ),
    ];
    for (name, token, expected) in cases {
        let aud = if name == "wrong audience" {
            "sts.amazonaws.com"
        } else {
            "sigstore"
        };
        let err = verify_jwt(&token, &jwks, GITHUB_ISSUER, aud).unwrap_err();
        assert!(err.contains(expected), "{name}: {err}");
    }
    // Tampering with the claims breaks the signature.
    let mut parts: Vec<String> = ok.split('.').map(String::from).collect();
    let claims = IdToken::parse(ok.clone()).unwrap().claims().sub.clone();
    assert!(!claims.is_empty());
    parts[1] = parts[1].chars().rev().collect();
    assert!(verify_jwt(&parts.join("."), &jwks, GITHUB_ISSUER, "sigstore").is_err());
}
