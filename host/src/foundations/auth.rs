//! End-user authentication: JWT bearer tokens on the reservation and payment
//! routes, REST and gRPC alike.
//!
//! A token is accepted when its signature verifies (HS256 with the configured
//! secret, or RS256/ES256 with a key of the configured JWKS file, picked by
//! `kid`), it has a subject, it has not expired by the host's clock (so
//! the virtual clock ages tokens too), and neither its `nbf` nor its `iat`
//! lies more than a minute ahead of that clock. Issuer and audience are checked when
//! configured. The subject is the caller's user id: the edge writes it into
//! the request's `user_id` field, and a request naming another user is
//! refused, so a component never sees a user id the token does not vouch for.
//!
//! The `tenant` claim says which tenant the user belongs to (none: `default`);
//! a token is accepted only on its own tenant's requests. A tenant with keys
//! of its own ([`TenantAuth`]: its identity provider's JWKS or an HS256
//! secret) has its users' tokens verified with those alone: the host's keys
//! cannot sign for it, and its keys sign for no other tenant. Tenants without
//! their own keys are signed for by the host's (the operator's) keys.
//!
//! With neither a secret nor a JWKS configured, the host makes a random HS256
//! secret at `<data-dir>/jwt-secret` on first start; `tacos token` reads it.

use anyhow::{Context, bail};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where tokens are checked against, from the CLI or the embedding program.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// HS256 secret (`--jwt-secret`, `TACOS_JWT_SECRET`).
    pub secret: Option<String>,
    /// A JWKS file of RS256/ES256 public keys (`--jwks`, `TACOS_JWKS`).
    pub jwks: Option<PathBuf>,
    /// Required `iss`, if set.
    pub issuer: Option<String>,
    /// Required `aud`, if set.
    pub audience: Option<String>,
}

/// A tenant's own token keys (`[tenants.ID.auth]`, or `auth` in the admin
/// API's tenant body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantAuth {
    /// An HS256 secret (at least 16 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs256_secret: Option<String>,
    /// A JWKS document (JSON text) of the tenant's RS256/ES256 public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    /// Required `iss`, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Required `aud`, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// The `tenant` claim of a bearer header, read *without* checking the
/// signature: only to pick whose keys verify the token (which then proves
/// the claim, or refuses the token). `None` when the header is no readable
/// token; `Some(None)` when the token names no tenant.
pub fn claimed_tenant(authorization: &str) -> Option<Option<String>> {
    #[derive(Deserialize)]
    struct Peek {
        tenant: Option<String>,
    }
    let token = authorization.strip_prefix("Bearer ")?.trim();
    let peeked = jsonwebtoken::dangerous::insecure_decode::<Peek>(token).ok()?;
    Some(peeked.claims.tenant)
}

/// The claims tacos reads; others are ignored.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not valid before (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The tenant the token is for; `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Verifies bearer tokens.
pub struct Auth {
    hs256: Option<DecodingKey>,
    /// The HS256 secret, kept to sign demo sign-ins ([`Auth::mint`]).
    secret: Option<String>,
    /// `kid` → key and its algorithm; the `""` entry is a JWKS's only key.
    jwks: HashMap<String, (DecodingKey, Algorithm)>,
    issuer: Option<String>,
    audience: Option<String>,
}

/// How far ahead of the host's clock a token's `nbf` and `iat` may be
/// (clocks of issuers and hosts drift a little).
pub const LEEWAY_S: u64 = 60;

/// The secret file's name under the data dir.
pub const SECRET_FILE: &str = "jwt-secret";

impl Auth {
    /// Build the verifier; `data_dir` holds the generated secret when none
    /// is configured. Also says, for the banner, how tokens are checked.
    pub fn new(opts: &AuthOptions, data_dir: &Path) -> anyhow::Result<(Auth, String)> {
        let mut auth = Auth {
            hs256: None,
            secret: None,
            jwks: HashMap::new(),
            issuer: opts.issuer.clone(),
            audience: opts.audience.clone(),
        };
        let mut said = Vec::new();
        if let Some(path) = &opts.jwks {
            auth.jwks = load_jwks(path)?;
            said.push(format!("RS256/ES256 keys from {}", path.display()));
        }
        match &opts.secret {
            Some(secret) if secret.len() < 16 => {
                bail!("the JWT secret must be at least 16 bytes")
            }
            Some(secret) => {
                auth.hs256 = Some(DecodingKey::from_secret(secret.as_bytes()));
                auth.secret = Some(secret.clone());
                said.push("HS256 with the configured secret".into());
            }
            None if opts.jwks.is_none() => {
                let secret = dev_secret(data_dir)?;
                auth.hs256 = Some(DecodingKey::from_secret(secret.as_bytes()));
                auth.secret = Some(secret.clone());
                said.push(format!(
                    "HS256, secret in {}",
                    data_dir.join(SECRET_FILE).display()
                ));
            }
            None => {}
        }
        Ok((auth, said.join(" + ")))
    }

    /// A token these keys accept, for `user` of `tenant`, signed with the
    /// HS256 secret (the demo sign-in); an error saying why when they have
    /// none or require claims such a token would not carry.
    pub fn mint(
        &self,
        tenant: Option<&str>,
        user: &str,
        now_s: u64,
        ttl_s: u64,
    ) -> Result<String, String> {
        let Some(secret) = &self.secret else {
            return Err("the host signs no tokens of its own (it checks JWKS keys)".into());
        };
        if self.issuer.is_some() || self.audience.is_some() {
            return Err("the host checks tokens of an issuer; sign in there".into());
        }
        mint_for(secret, tenant, user, now_s, ttl_s).map_err(|e| format!("{e:#}"))
    }

    /// A tenant's own verifier.
    pub fn for_tenant(t: &TenantAuth) -> anyhow::Result<Auth> {
        let mut auth = Auth {
            hs256: None,
            // A tenant's users sign in with the tenant, never here.
            secret: None,
            jwks: HashMap::new(),
            issuer: t.issuer.clone(),
            audience: t.audience.clone(),
        };
        if let Some(text) = &t.jwks {
            auth.jwks = parse_jwks(text, "the tenant's jwks")?;
        }
        match &t.hs256_secret {
            Some(secret) if secret.len() < 16 => {
                bail!("the tenant's hs256_secret must be at least 16 bytes")
            }
            Some(secret) => auth.hs256 = Some(DecodingKey::from_secret(secret.as_bytes())),
            None if t.jwks.is_none() => bail!("give the tenant's auth a jwks or an hs256_secret"),
            None => {}
        }
        Ok(auth)
    }

    /// The claims of a valid `authorization: Bearer …` header at `now_s` of
    /// the host's clock. `nbf` and `iat` are real-world times set by an
    /// issuer: they are checked against the later of `now_s` and `real_s`
    /// (the system clock), so a virtual clock that lags real time still
    /// takes fresh tokens and one moved ahead lets a future `nbf` arrive.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        now_s: u64,
        real_s: u64,
    ) -> Result<Claims, String> {
        let token = authorization
            .ok_or("missing bearer token (authorization: Bearer <JWT>)")?
            .strip_prefix("Bearer ")
            .ok_or("the authorization header must be `Bearer <JWT>`")?
            .trim();
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("bad token: {e}"))?;
        let (key, alg) = match header.alg {
            Algorithm::HS256 => (
                self.hs256
                    .as_ref()
                    .ok_or("HS256 tokens are not accepted here")?,
                Algorithm::HS256,
            ),
            _ => {
                let kid = header.kid.as_deref().unwrap_or("");
                let (key, alg) = self
                    .jwks
                    .get(kid)
                    .ok_or_else(|| format!("no key `{kid}` in the JWKS"))?;
                if *alg != header.alg {
                    return Err(format!("key `{kid}` is not for {:?}", header.alg));
                }
                (key, *alg)
            }
        };
        let mut v = Validation::new(alg);
        // Expiry is checked below against the host's clock.
        v.validate_exp = false;
        v.set_required_spec_claims(&["exp", "sub"]);
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        match &self.audience {
            Some(aud) => v.set_audience(&[aud]),
            None => v.validate_aud = false,
        }
        let claims = jsonwebtoken::decode::<Claims>(token, key, &v)
            .map_err(|e| format!("bad token: {e}"))?
            .claims;
        if claims.exp <= now_s {
            return Err("the token has expired".into());
        }
        let latest = now_s.max(real_s) + LEEWAY_S;
        if claims.nbf.is_some_and(|nbf| nbf > latest) {
            return Err("the token is not valid yet (nbf)".into());
        }
        if claims.iat.is_some_and(|iat| iat > latest) {
            return Err("the token was issued in the future (iat)".into());
        }
        if claims.sub.is_empty() {
            return Err("the token has an empty subject".into());
        }
        Ok(claims)
    }
}

/// An HS256 token for `user` of the `default` tenant, valid `ttl_s` seconds from `now_s`.
pub fn mint(secret: &str, user: &str, now_s: u64, ttl_s: u64) -> anyhow::Result<String> {
    mint_for(secret, None, user, now_s, ttl_s)
}

/// An HS256 token for `user` of `tenant` (a `tenant` claim; none for `default`).
pub fn mint_for(
    secret: &str,
    tenant: Option<&str>,
    user: &str,
    now_s: u64,
    ttl_s: u64,
) -> anyhow::Result<String> {
    let claims = Claims {
        sub: user.to_string(),
        exp: now_s + ttl_s,
        iat: Some(now_s),
        nbf: None,
        tenant: tenant.map(str::to_string),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("signing the token")
}

/// The secret a host on `data_dir` uses when none is configured: read, or
/// made (32 random bytes, hex) and written owner-only on first use.
pub fn dev_secret(data_dir: &Path) -> anyhow::Result<String> {
    stored_secret(&data_dir.join(SECRET_FILE))
}

/// The secret kept in the file at `path`: read, or made (32 random bytes,
/// hex) and written owner-only on first use.
pub fn stored_secret(path: &Path) -> anyhow::Result<String> {
    let path = path.to_path_buf();
    let data_dir = path.parent().unwrap_or(Path::new("."));
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

fn load_jwks(path: &Path) -> anyhow::Result<HashMap<String, (DecodingKey, Algorithm)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_jwks(&text, &path.display().to_string())
}

fn parse_jwks(
    text: &str,
    origin: &str,
) -> anyhow::Result<HashMap<String, (DecodingKey, Algorithm)>> {
    let set: JwkSet =
        serde_json::from_str(text).with_context(|| format!("{origin} is not a JWKS"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        let alg = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => bail!("{origin}: key `{kid}` is neither RSA nor EC"),
        };
        let key = DecodingKey::from_jwk(jwk).with_context(|| format!("{origin}: key `{kid}`"))?;
        if keys.insert(kid.clone(), (key, alg)).is_some() {
            bail!("{origin}: key id `{kid}` appears twice");
        }
    }
    if keys.is_empty() {
        bail!("{origin}: the JWKS has no keys");
    }
    if keys.len() == 1
        && let Some(only) = keys.values().next().cloned()
    {
        // A token without `kid` may use a JWKS's only key.
        keys.entry(String::new()).or_insert(only);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(secret: &str) -> Auth {
        let opts = AuthOptions {
            secret: Some(secret.into()),
            ..Default::default()
        };
        Auth::new(&opts, Path::new("/nonexistent")).unwrap().0
    }

    #[test]
    fn hs256_subject_expiry_and_signature() {
        let auth = hs("0123456789abcdef-secret");
        let t = mint("0123456789abcdef-secret", "alice", 1_000, 60).unwrap();
        let bearer = format!("Bearer {t}");
        assert_eq!(
            auth.verify(Some(&bearer), 1_030, 0).map(|c| (c.sub, c.exp)),
            Ok(("alice".into(), 1_060))
        );
        assert!(
            auth.verify(Some(&bearer), 1_060, 0)
                .unwrap_err()
                .contains("expired")
        );
        assert!(auth.verify(None, 1_000, 0).unwrap_err().contains("missing"));
        assert!(auth.verify(Some(&t), 1_000, 0).is_err(), "no Bearer prefix");
        let forged = mint("another-secret-of-16+", "alice", 1_000, 60).unwrap();
        assert!(
            auth.verify(Some(&format!("Bearer {forged}")), 1_000, 0)
                .unwrap_err()
                .contains("bad token")
        );
        assert!(
            Auth::new(
                &AuthOptions {
                    secret: Some("short".into()),
                    ..Default::default()
                },
                Path::new("/nonexistent")
            )
            .is_err()
        );
    }

    #[test]
    fn not_before_and_issued_at_in_the_future_are_refused() {
        let secret = "0123456789abcdef-secret";
        let auth = hs(secret);
        let sign = |iat: Option<u64>, nbf: Option<u64>| {
            let claims = Claims {
                sub: "alice".into(),
                exp: 1_000_000,
                iat,
                nbf,
                tenant: None,
            };
            let t = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap();
            format!("Bearer {t}")
        };
        let now = 10_000;
        let tomorrow = now + 86_400;
        assert!(
            auth.verify(Some(&sign(None, Some(tomorrow))), now, now)
                .unwrap_err()
                .contains("nbf")
        );
        assert!(
            auth.verify(Some(&sign(Some(tomorrow), None)), now, now)
                .unwrap_err()
                .contains("iat")
        );
        // Within the leeway, and once the time has come, it is good: on
        // the host's (virtual) clock or the real one.
        let soon = sign(Some(now + 30), Some(now + 30));
        assert!(auth.verify(Some(&soon), now, now).is_ok());
        let later = sign(None, Some(tomorrow));
        assert!(auth.verify(Some(&later), tomorrow, now).is_ok());
        assert!(auth.verify(Some(&later), now, tomorrow).is_ok());
    }

    #[test]
    fn dev_secret_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = dev_secret(dir.path()).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(dev_secret(dir.path()).unwrap(), a);
    }
}
