//! The attachments' deployment (docs/protocol.md, "Files"): a private bucket whose objects
//! under `files/` expire with the history, CORS for the page's origins, and the one policy
//! that lets ws-message and http-api sign, check and delete on that prefix and nowhere else.

use serde_json::{json, Value};

use super::{reference, sub, Template, JWKS_URL};

/// The functions that presign, check and delete, with their roles.
const USERS: &[(&str, &str)] = &[("MessageFunction", "MessageRole"), ("HttpApiFunction", "HttpApiRole")];

#[test]
fn the_files_bucket_is_private_and_expires_with_the_history() {
    let stack = Template::load().stack();
    let resource = stack.get("FilesBucket").expect("the files bucket");
    assert_eq!(resource["DeletionPolicy"], "Retain", "users' files are data");
    let bucket = &resource["Properties"];
    super::chat_page::assert_private(bucket);
    let rules = bucket["LifecycleConfiguration"]["Rules"]
        .as_array()
        .expect("a lifecycle");
    let expiry: Vec<&Value> = rules
        .iter()
        .filter(|rule| rule["Status"] == "Enabled" && rule.get("ExpirationInDays").is_some())
        .collect();
    assert_eq!(expiry.len(), 1, "{rules:?}");
    assert_eq!(expiry[0]["Prefix"], "files/");
    assert_eq!(reference(&expiry[0]["ExpirationInDays"]), Some("HistoryDays"));
    // No bucket policy opens it: only the presigned URLs of the functions' roles reach it.
    for (name, policy) in stack.of_type("AWS::S3::BucketPolicy") {
        assert!(
            !policy.to_string().contains("FilesBucket"),
            "{name} opens the files bucket"
        );
    }
}

#[test]
fn the_page_origins_may_put_and_get_files() {
    let origins = "https://chat.example.com,https://other.example.com";
    let stack = Template::with(&[("JwksUrl", JWKS_URL), ("HttpApiCorsOrigins", origins)]).stack();
    let cors = &stack.get("FilesBucket").unwrap()["Properties"]["CorsConfiguration"]["CorsRules"][0];
    // The HTTP API's origins, the page's.
    assert_eq!(
        stack.resolve(&cors["AllowedOrigins"]),
        Some(json!({"Fn::Split": [",", {"Ref": "HttpApiCorsOrigins"}]}))
    );
    assert_eq!(cors["AllowedMethods"], json!(["GET", "PUT"]));
    assert_eq!(cors["AllowedHeaders"], json!(["content-type"]));
    let closed = Template::with(&[("JwksUrl", JWKS_URL), ("HttpApiCorsOrigins", "")]).stack();
    assert!(
        closed.get("FilesBucket").unwrap()["Properties"]
            .get("CorsConfiguration")
            .is_none(),
        "no origin given, no CORS"
    );
}

#[test]
fn only_the_functions_that_sign_may_touch_the_files_prefix() {
    for (mode, template) in [
        ("required", Template::with(&[("JwksUrl", JWKS_URL)])),
        ("none", Template::with(&[("AuthMode", "none")])),
    ] {
        let stack = template.stack();
        let mut expected_roles = vec![];
        for (function, role) in USERS {
            let Some(resource) = stack.get(function) else {
                assert_eq!((mode, *function), ("none", "HttpApiFunction"), "only http-api goes");
                continue;
            };
            let variables = &resource["Properties"]["Environment"]["Variables"];
            assert_eq!(
                reference(&variables["ROOMCAST_FILES_BUCKET"]),
                Some("FilesBucket"),
                "{function}"
            );
            expected_roles.push(json!({"Ref": role}));
        }
        let policy = &stack.get("FilesPolicy").expect("the files policy")["Properties"];
        let roles: Vec<Value> = policy["Roles"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|role| stack.resolve(role))
            .collect();
        assert_eq!(roles, expected_roles, "{mode}");
        let statements = policy["PolicyDocument"]["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(
            statements[0]["Action"],
            json!(["s3:PutObject", "s3:GetObject", "s3:DeleteObject"])
        );
        assert_eq!(sub(&statements[0]["Resource"]), Some("${FilesBucket.Arn}/files/*"));
        // No other policy of the stack names the bucket.
        for (name, resource) in stack.of_type("AWS::IAM::Policy").chain(stack.of_type("AWS::IAM::Role")) {
            if name != "FilesPolicy" {
                assert!(
                    !resource.to_string().contains("FilesBucket"),
                    "{name} reaches the files"
                );
            }
        }
    }
}
