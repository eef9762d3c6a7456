//! The optional hosting of the chat page (`ChatPage` cloudfront): a private S3 bucket that
//! only the stack's CloudFront distribution reads (Origin Access Control), HTTPS only, the
//! page's Content-Security-Policy as a response header, and outputs that open the page on
//! this stack's APIs and copy the page's files — the same files the local gateway serves.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{reference, sub, Template, JWKS_URL};

/// The resources of the option, each only when it is chosen.
const RESOURCES: &[&str] = &[
    "ChatPageBucket",
    "ChatPageBucketPolicy",
    "ChatPageOriginAccessControl",
    "ChatPageHeaders",
    "ChatPageDistribution",
];
const OUTPUTS: &[&str] = &["ChatPageUrl", "ChatPageUpload"];

/// The option chosen, with sign-in on (so with an HTTP API) and off.
fn hosted() -> [(&'static str, &'static Template); 2] {
    [
        (
            "required",
            Template::with(&[("ChatPage", "cloudfront"), ("JwksUrl", JWKS_URL)]),
        ),
        (
            "none",
            Template::with(&[("ChatPage", "cloudfront"), ("AuthMode", "none")]),
        ),
    ]
}

/// A `Fn::GetAtt` as `Name.Attribute`.
fn get_att(value: &Value) -> Option<String> {
    let parts = value.get("Fn::GetAtt")?.as_array()?;
    Some(format!("{}.{}", parts.first()?.as_str()?, parts.get(1)?.as_str()?))
}

#[test]
fn the_chat_page_is_hosted_only_when_asked() {
    let default = Template::load();
    let stack = default.stack();
    assert_eq!(stack.parameter("ChatPage"), json!("none"), "hosting is opt-in");
    for name in RESOURCES {
        assert_eq!(default.get(name)["Condition"], "HostChatPage", "{name}");
        assert!(stack.get(name).is_none(), "{name} exists without ChatPage cloudfront");
    }
    for name in OUTPUTS {
        assert_eq!(default.document["Outputs"][name]["Condition"], "HostChatPage", "{name}");
    }
    for (mode, template) in hosted() {
        let stack = template.stack();
        assert!(
            stack.rule_failures().is_empty(),
            "AuthMode {mode}: {:?}",
            stack.rule_failures()
        );
        for name in RESOURCES {
            assert!(stack.get(name).is_some(), "AuthMode {mode}: {name} missing");
        }
    }
}

#[test]
fn the_bucket_is_private_and_only_the_distribution_reads_it() {
    let (_, template) = hosted()[0];
    let stack = template.stack();
    let bucket = &stack.get("ChatPageBucket").unwrap()["Properties"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(bucket["PublicAccessBlockConfiguration"][setting], true, "{setting}");
    }
    assert_eq!(
        bucket["OwnershipControls"]["Rules"][0]["ObjectOwnership"], "BucketOwnerEnforced",
        "no ACLs"
    );
    assert!(
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            ["SSEAlgorithm"]
            .is_string(),
        "encrypted at rest"
    );
    assert!(
        bucket.get("WebsiteConfiguration").is_none(),
        "no public website endpoint"
    );

    let policy = &stack.get("ChatPageBucketPolicy").unwrap()["Properties"];
    assert_eq!(reference(&policy["Bucket"]), Some("ChatPageBucket"));
    let statements = policy["PolicyDocument"]["Statement"].as_array().unwrap();
    let allows: Vec<&Value> = statements.iter().filter(|s| s["Effect"] == "Allow").collect();
    assert_eq!(allows.len(), 1, "one reader: {allows:?}");
    let read = allows[0];
    assert_eq!(read["Principal"], json!({"Service": "cloudfront.amazonaws.com"}));
    assert_eq!(read["Action"], "s3:GetObject", "read only");
    assert_eq!(sub(&read["Resource"]), Some("${ChatPageBucket.Arn}/*"));
    assert_eq!(
        sub(&read["Condition"]["StringEquals"]["AWS:SourceArn"]),
        Some("arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${ChatPageDistribution}"),
        "only this stack's distribution may read"
    );
    let deny_plain = statements
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("a statement refusing plain HTTP");
    assert_eq!(deny_plain["Condition"]["Bool"]["aws:SecureTransport"], "false");
    assert_eq!(deny_plain["Principal"], "*");
}

#[test]
fn the_distribution_serves_the_page_over_https_with_its_content_security_policy() {
    for (mode, template) in hosted() {
        let stack = template.stack();
        let config = &stack.get("ChatPageDistribution").unwrap()["Properties"]["DistributionConfig"];
        assert_eq!(config["DefaultRootObject"], "index.html", "AuthMode {mode}");
        let origins = config["Origins"].as_array().unwrap();
        assert_eq!(origins.len(), 1);
        let origin = &origins[0];
        assert_eq!(
            get_att(&origin["DomainName"]).as_deref(),
            Some("ChatPageBucket.RegionalDomainName")
        );
        assert_eq!(
            get_att(&origin["OriginAccessControlId"]).as_deref(),
            Some("ChatPageOriginAccessControl.Id"),
            "Origin Access Control, not the legacy identity"
        );
        assert_eq!(origin["S3OriginConfig"]["OriginAccessIdentity"], "");
        let behaviour = &config["DefaultCacheBehavior"];
        assert_eq!(behaviour["TargetOriginId"], origin["Id"]);
        assert_eq!(behaviour["ViewerProtocolPolicy"], "redirect-to-https");
        assert_eq!(
            behaviour["AllowedMethods"],
            json!(["GET", "HEAD"]),
            "the page is read-only"
        );
        assert_eq!(
            reference(&behaviour["ResponseHeadersPolicyId"]),
            Some("ChatPageHeaders")
        );

        let control = &stack.get("ChatPageOriginAccessControl").unwrap()["Properties"]["OriginAccessControlConfig"];
        assert_eq!(control["OriginAccessControlOriginType"], "s3");
        assert_eq!(control["SigningBehavior"], "always");
        assert_eq!(control["SigningProtocol"], "sigv4");

        // The policy the local gateway sends, but for connecting only over TLS.
        let headers = &stack.get("ChatPageHeaders").unwrap()["Properties"]["ResponseHeadersPolicyConfig"]
            ["SecurityHeadersConfig"];
        let expected = roomcast_local::page::CONTENT_SECURITY_POLICY
            .replace(" ws:", "")
            .replace(" http:", "");
        assert_eq!(
            headers["ContentSecurityPolicy"]["ContentSecurityPolicy"],
            expected.as_str()
        );
        assert_eq!(headers["ContentSecurityPolicy"]["Override"], true);
        assert_eq!(headers["ContentTypeOptions"]["Override"], true, "nosniff");
    }
}

#[test]
fn the_outputs_open_the_page_on_this_stacks_apis_and_copy_the_served_files() {
    let (_, template) = hosted()[0];
    let outputs = &template.document["Outputs"];
    let websocket = sub(&outputs["WebSocketUrl"]["Value"]).expect("WebSocketUrl");
    let http = sub(&outputs["HttpApiUrl"]["Value"]).expect("HttpApiUrl");
    let url = outputs["ChatPageUrl"]["Value"]["Fn::If"]
        .as_array()
        .expect("ChatPageUrl chooses by AuthOn");
    assert_eq!(url[0], "AuthOn");
    let page = "https://${ChatPageDistribution.DomainName}/";
    assert_eq!(
        sub(&url[1]),
        Some(format!("{page}?ws={websocket}&api={http}").as_str()),
        "with sign-in on"
    );
    assert_eq!(
        sub(&url[2]),
        Some(format!("{page}?ws={websocket}").as_str()),
        "with AuthMode none: no HTTP API"
    );

    let upload = sub(&outputs["ChatPageUpload"]["Value"]).expect("ChatPageUpload");
    assert!(
        upload.starts_with("aws s3 sync web/ s3://${ChatPageBucket}/ --exclude '*' "),
        "{upload}"
    );
    let included: BTreeSet<&str> = upload
        .split(" --include ")
        .skip(1)
        .map(|part| part.split_whitespace().next().unwrap())
        .collect();
    let served: BTreeSet<&str> = roomcast_local::page::FILES
        .iter()
        .map(|(path, _, _)| path.trim_start_matches('/'))
        .filter(|file| !file.is_empty())
        .collect();
    assert_eq!(
        included, served,
        "the upload copies exactly the files the local gateway serves"
    );
}
