use super::doc_app;
use crate::auth::{self, AuthError};

/// Pusher's "Authentication and authorization signatures" worked example.
const DOC_SIGNATURE: &str = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";

#[test]
fn the_documented_private_channel_example() {
    let app = doc_app();
    assert_eq!(
        auth::sign_channel(&app.secret, "1234.1234", "private-foobar", None),
        DOC_SIGNATURE
    );
    let good = format!("278d425bdf160c739803:{DOC_SIGNATURE}");
    assert_eq!(
        auth::verify_channel(&app, "1234.1234", "private-foobar", None, &good),
        Ok(())
    );
    let upper = format!(
        "278d425bdf160c739803:{}",
        DOC_SIGNATURE.to_ascii_uppercase()
    );
    assert_eq!(
        auth::verify_channel(&app, "1234.1234", "private-foobar", None, &upper),
        Ok(())
    );
}

#[test]
fn a_signature_for_anything_else_is_refused() {
    let app = doc_app();
    let good = format!("278d425bdf160c739803:{DOC_SIGNATURE}");
    let verify = |socket: &str, channel: &str, data: Option<&str>, auth: &str| {
        auth::verify_channel(&app, socket, channel, data, auth)
    };
    assert_eq!(
        verify("1234.1235", "private-foobar", None, &good),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        verify("1234.1234", "private-foobaz", None, &good),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        verify("1234.1234", "private-foobar", Some("{}"), &good),
        Err(AuthError::BadSignature)
    );
    let other_key = format!("otherkey:{DOC_SIGNATURE}");
    assert_eq!(
        verify("1234.1234", "private-foobar", None, &other_key),
        Err(AuthError::WrongKey)
    );
    for bad in [
        "",
        "278d425bdf160c739803",
        "278d425bdf160c739803:",
        "278d425bdf160c739803:abc",
        &format!("278d425bdf160c739803:{DOC_SIGNATURE}0"),
    ] {
        assert_eq!(
            verify("1234.1234", "private-foobar", None, bad),
            Err(AuthError::Malformed),
            "{bad:?}"
        );
    }
    let not_hex = format!("278d425bdf160c739803:{}", "z".repeat(64));
    assert_eq!(
        verify("1234.1234", "private-foobar", None, &not_hex),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn presence_signatures_cover_the_channel_data_byte_for_byte() {
    let app = doc_app();
    let data = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
    let sig = auth::sign_channel(&app.secret, "1234.1234", "presence-foobar", Some(data));
    let auth = format!("{}:{sig}", app.key);
    assert_eq!(
        auth::verify_channel(&app, "1234.1234", "presence-foobar", Some(data), &auth),
        Ok(())
    );
    let reformatted = r#"{"user_id": 10, "user_info": {"name": "Mr. Channels"}}"#;
    assert_eq!(
        auth::verify_channel(
            &app,
            "1234.1234",
            "presence-foobar",
            Some(reformatted),
            &auth
        ),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        sig,
        auth::hmac_hex(&app.secret, &["1234.1234:presence-foobar:", data]),
        "the string signed is socket_id:channel:channel_data"
    );
}

#[test]
fn user_signatures_sign_socket_id_user_user_data() {
    let app = doc_app();
    let data = r#"{"id":"42"}"#;
    let sig = auth::sign_user(&app.secret, "1234.1234", data);
    assert_eq!(
        sig,
        auth::hmac_hex(&app.secret, &["1234.1234::user::", data])
    );
    let auth = format!("{}:{sig}", app.key);
    assert_eq!(auth::verify_user(&app, "1234.1234", data, &auth), Ok(()));
    assert_eq!(
        auth::verify_user(&app, "1234.1234", r#"{"id":"43"}"#, &auth),
        Err(AuthError::BadSignature)
    );
    // A channel signature is not a user signature.
    let chan = format!(
        "{}:{}",
        app.key,
        auth::sign_channel(&app.secret, "1234.1234", "private-foobar", None)
    );
    assert_eq!(
        auth::verify_user(&app, "1234.1234", data, &chan),
        Err(AuthError::BadSignature)
    );
}
