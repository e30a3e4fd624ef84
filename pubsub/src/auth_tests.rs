use super::*;

const SECRET: &[u8] = b"a test secret that is long enough";
const NOW: i64 = 1_700_000_000;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with this header and payload JSON, signed with HMAC-SHA256 under `secret`.
fn sign(header: &str, payload: &str, secret: &[u8]) -> String {
    let signing = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
    mac.update(signing.as_bytes());
    format!("{signing}.{}", b64(&mac.finalize().into_bytes()))
}

fn hs256(payload: &str) -> String {
    sign(r#"{"alg":"HS256","typ":"JWT"}"#, payload, SECRET)
}

fn verify(token: &str) -> Result<Claims, AuthError> {
    Verifier::new(SECRET).verify(token, NOW)
}

#[test]
fn valid_token_gives_its_claims() {
    let t = hs256(&format!(
        r#"{{"sub":"ann","exp":{},"rooms":["a","b*"]}}"#,
        NOW + 60
    ));
    let c = verify(&t).unwrap();
    assert_eq!(c.sub.as_deref(), Some("ann"));
    assert_eq!(c.rooms, Some(vec!["a".to_string(), "b*".to_string()]));
    assert_eq!(c.read, None);
}

#[test]
fn bad_signature_is_refused() {
    let t = sign(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"exp":{}}}"#, NOW + 60),
        b"other",
    );
    assert_eq!(verify(&t), Err(AuthError::Signature));
    // A payload swapped under a valid signature.
    let good = hs256(&format!(r#"{{"exp":{}}}"#, NOW + 60));
    let forged = hs256(&format!(r#"{{"exp":{},"sub":"root"}}"#, NOW + 60));
    let mut p = good.split('.');
    let mut f = forged.split('.');
    let mixed = format!(
        "{}.{}.{}",
        p.next().unwrap(),
        f.nth(1).unwrap(),
        p.nth(1).unwrap()
    );
    assert_eq!(verify(&mixed), Err(AuthError::Signature));
    // A truncated tag.
    assert_eq!(verify(&good[..good.len() - 3]), Err(AuthError::Signature));
}

#[test]
fn other_algorithms_are_refused() {
    let payload = format!(r#"{{"exp":{}}}"#, NOW + 60);
    for alg in ["none", "HS512", "RS256", "hs256", "ES256"] {
        let t = sign(&format!(r#"{{"alg":"{alg}"}}"#), &payload, SECRET);
        assert_eq!(verify(&t), Err(AuthError::Algorithm), "{alg}");
    }
    // `none` with an empty signature, the classic attack.
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(payload.as_bytes()));
    assert_eq!(verify(&none), Err(AuthError::Algorithm));
    let crit = sign(r#"{"alg":"HS256","crit":["x"]}"#, &payload, SECRET);
    assert_eq!(verify(&crit), Err(AuthError::Algorithm));
}

#[test]
fn exp_is_required_and_checked_with_leeway() {
    assert_eq!(verify(&hs256(r#"{"sub":"a"}"#)), Err(AuthError::MissingExp));
    assert_eq!(
        verify(&hs256(r#"{"exp":"soon"}"#)),
        Err(AuthError::Malformed)
    );
    let at = |exp: i64| verify(&hs256(&format!(r#"{{"exp":{exp}}}"#)));
    assert!(at(NOW).is_ok());
    assert!(at(NOW - LEEWAY_SECS).is_ok(), "within leeway");
    assert_eq!(at(NOW - LEEWAY_SECS - 1), Err(AuthError::Expired));
    assert_eq!(at(NOW - 3600), Err(AuthError::Expired));
}

#[test]
fn nbf_is_honoured_with_leeway() {
    let at = |nbf: i64| verify(&hs256(&format!(r#"{{"exp":{},"nbf":{nbf}}}"#, NOW + 600)));
    assert!(at(NOW - 10).is_ok());
    assert!(at(NOW + LEEWAY_SECS).is_ok(), "within leeway");
    assert_eq!(at(NOW + LEEWAY_SECS + 1), Err(AuthError::NotYetValid));
}

#[test]
fn malformed_tokens_are_refused() {
    let good = hs256(&format!(r#"{{"exp":{}}}"#, NOW + 60));
    let cases = [
        String::new(),
        "abc".into(),
        "a.b".into(),
        format!("{good}.extra"),
        format!("!!!.{}", good.split_once('.').unwrap().1),
        sign("[1]", r#"{"exp":1}"#, SECRET),
        sign(r#"{"alg":"HS256"}"#, "not json", SECRET),
        sign(
            r#"{"alg":"HS256"}"#,
            r#"{"exp":99999999999,"rooms":"a"}"#,
            SECRET,
        ),
        format!("{good}=="),
    ];
    for t in &cases {
        let err = verify(t).unwrap_err();
        assert!(
            matches!(err, AuthError::Malformed | AuthError::Signature),
            "{t}: {err:?}"
        );
    }
}

#[test]
fn errors_never_contain_the_token() {
    let t = hs256(&format!(r#"{{"exp":{}}}"#, NOW - 100));
    let err = verify(&t).unwrap_err();
    let text = format!("{err} {err:?}");
    for part in t.split('.') {
        assert!(!text.contains(part), "{text}");
    }
    assert!(!format!("{:?}", Verifier::new(SECRET)).contains("secret"));
}

#[test]
fn without_claims_everything_is_allowed() {
    let c = Claims::default();
    assert!(c.may_join("any") && c.may_publish("any") && c.may_read("any"));
}

#[test]
fn rooms_and_read_claims_with_prefixes() {
    let c = Claims {
        sub: None,
        rooms: Some(vec!["lobby".into(), "team-*".into()]),
        read: Some(vec!["news".into(), "feed/*".into()]),
        exp: None,
    };
    assert_eq!(c.access("lobby"), Access::Full);
    assert_eq!(c.access("team-red"), Access::Full);
    assert_eq!(c.access("team-"), Access::Full);
    assert_eq!(c.access("team"), Access::Denied);
    assert_eq!(c.access("lobby2"), Access::Denied);
    assert_eq!(c.access("news"), Access::Read);
    assert_eq!(c.access("feed/x"), Access::Read);
    assert_eq!(c.access("newsx"), Access::Denied);
    assert!(c.may_join("news") && c.may_read("news") && !c.may_publish("news"));
    assert!(!c.may_join("other") && !c.may_read("other") && !c.may_publish("other"));

    // Only `read`: nothing may be published, the listed names may be read.
    let r = Claims {
        read: Some(vec!["*".into()]),
        ..Claims::default()
    };
    assert!(r.may_read("x") && !r.may_publish("x"));
    // An empty `rooms` list is a claim: nothing allowed.
    let none = Claims {
        rooms: Some(vec![]),
        ..Claims::default()
    };
    assert!(!none.may_join("lobby"));
}

#[test]
fn token_from_query_string() {
    assert_eq!(
        token_from_target("/?token=abc.def.ghi").as_deref(),
        Some("abc.def.ghi")
    );
    assert_eq!(
        token_from_target("/chat?x=1&token=a%2Eb%2ec&y=2").as_deref(),
        Some("a.b.c")
    );
    assert_eq!(token_from_target("/?mytoken=abc"), None);
    assert_eq!(token_from_target("/?token="), None);
    assert_eq!(token_from_target("/token=abc"), None);
    assert_eq!(token_from_target("/?token=a%zz"), None);
    assert_eq!(token_from_target("/?token=a%2"), None);
    assert_eq!(token_from_target("/?token=%ff"), None, "not UTF-8");
}

#[test]
fn token_from_bearer_header() {
    assert_eq!(
        token_from_authorization("Bearer abc.def.ghi"),
        Some("abc.def.ghi")
    );
    assert_eq!(token_from_authorization("bearer   abc "), Some("abc"));
    assert_eq!(token_from_authorization("Basic abc"), None);
    assert_eq!(token_from_authorization("Bearer"), None);
    assert_eq!(token_from_authorization("Bearer  "), None);
}

#[test]
fn secret_file_loses_its_trailing_newline() {
    assert_eq!(secret_from_file(b"s3cret\n"), b"s3cret");
    assert_eq!(secret_from_file(b"s3cret\r\n"), b"s3cret");
    assert_eq!(secret_from_file(b"s3 cret"), b"s3 cret");
}
