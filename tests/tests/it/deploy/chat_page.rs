//! The optional hosting of the chat page (`ChatPage` cloudfront): a private S3 bucket that
//! only the stack's CloudFront distribution reads (Origin Access Control), HTTPS only, the
//! page's Content-Security-Policy as a response header, the HTTP API's CORS open to the
//! page's origin, and outputs that open the page on this stack's APIs and copy the page's
//! files — the same files the local gateway serves. cfn-lint and the SAM transform with
//! the option on and off.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{http_api, reference, run, sub, text, tool, Stack, Template, JWKS_URL};

/// The resources of the option, each only when it is chosen.
const RESOURCES: &[&str] = &[
    "ChatPageBucket",
    "ChatPageBucketPolicy",
    "ChatPageOriginAccessControl",
    "ChatPageHeaders",
    "ChatPageDistribution",
];
const OUTPUTS: &[&str] = &["ChatPageUrl", "ChatPageBucketName", "ChatPageUpload"];

/// The page's policy, as a host should send it: its own scripts and styles only, and
/// connections to the stack's WebSocket API and to the region's execute-api hosts over TLS
/// (the HTTP API's own origin would be a dependency cycle: its CORS names the page's), and
/// the region's S3 hosts for attachments, PUT and shown (the files bucket's own name would
/// be a cycle too, for the same reason); `blob:` images are the sender's own attachments.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob: https://*.s3.${AWS::Region}.${AWS::URLSuffix}; connect-src 'self' \
     wss://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix} \
     https://*.execute-api.${AWS::Region}.${AWS::URLSuffix} https://*.s3.${AWS::Region}.${AWS::URLSuffix}; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// AWS's managed cache policy CachingDisabled.
const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";

/// The page's origin as the template writes it.
const PAGE_ORIGIN: &str = "https://${ChatPageDistribution.DomainName}";

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
    for kind in [
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::CloudFront::Distribution",
        "AWS::CloudFront::OriginAccessControl",
        "AWS::CloudFront::ResponseHeadersPolicy",
    ] {
        // The attachments' bucket is there whether the page is hosted or not.
        let found: Vec<&str> = stack
            .of_type(kind)
            .map(|(name, _)| name)
            .filter(|name| *name != "FilesBucket")
            .collect();
        assert!(found.is_empty(), "{kind} without ChatPage cloudfront: {found:?}");
    }
    let none = Template::with(&[("AuthMode", "none")]).stack();
    assert!(none.get("ChatPageBucket").is_none(), "AuthMode none, ChatPage none");
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
    assert_private(bucket);
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
    // The bucket holds only copies of web/, and CloudFormation never deletes a bucket with
    // objects in it: Delete loses nothing, and leaves no orphan behind `sam delete`.
    let resource = stack.get("ChatPageBucket").unwrap();
    assert_eq!(resource["DeletionPolicy"], "Delete", "an explicit, documented choice");
    assert_eq!(resource["UpdateReplacePolicy"], "Delete");

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
        assert_eq!(
            behaviour["CachePolicyId"], CACHING_DISABLED,
            "no edge cache: an upload shows at once"
        );
        assert!(
            config.get("Aliases").is_none() && config["ViewerCertificate"].is_null(),
            "served on its own cloudfront.net name, with CloudFront's certificate"
        );

        let control = &stack.get("ChatPageOriginAccessControl").unwrap()["Properties"]["OriginAccessControlConfig"];
        assert_eq!(control["OriginAccessControlOriginType"], "s3");
        assert_eq!(control["SigningBehavior"], "always");
        assert_eq!(control["SigningProtocol"], "sigv4");
        // CloudFront names are global to the account: the bucket's generated name (at most
        // 63 characters) keeps the same stack name in two regions from clashing.
        assert_eq!(reference(&control["Name"]), Some("ChatPageBucket"));

        // The policy the local gateway sends, but for connecting only over TLS.
        let policy = &stack.get("ChatPageHeaders").unwrap()["Properties"]["ResponseHeadersPolicyConfig"];
        assert_eq!(reference(&policy["Name"]), Some("ChatPageBucket"));
        let headers = &policy["SecurityHeadersConfig"];
        assert_eq!(
            sub(&headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]),
            Some(CONTENT_SECURITY_POLICY)
        );
        assert!(
            !CONTENT_SECURITY_POLICY.contains(" wss:;") && !CONTENT_SECURITY_POLICY.contains(" https:;"),
            "no scheme-wide source: a link naming any host could reach it"
        );
        let hosts = "connect-src 'self' wss://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix} \
                     https://*.execute-api.${AWS::Region}.${AWS::URLSuffix} https://*.s3.${AWS::Region}.${AWS::URLSuffix};";
        let s3_images = "img-src 'self' data: blob: https://*.s3.${AWS::Region}.${AWS::URLSuffix};";
        assert_eq!(
            CONTENT_SECURITY_POLICY,
            roomcast_local::page::CONTENT_SECURITY_POLICY
                .replace("connect-src 'self';", hosts)
                .replace("img-src 'self' data: blob:;", s3_images),
            "the local gateway's policy, but connecting to the stack's APIs and S3 (the files)"
        );
        assert_eq!(headers["ContentSecurityPolicy"]["Override"], true);
        assert_eq!(headers["ContentTypeOptions"]["Override"], true, "nosniff");
        assert_eq!(headers["FrameOptions"]["FrameOption"], "DENY");
        assert!(
            headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"]
                .as_u64()
                .is_some_and(|age| age > 0),
            "HSTS"
        );
        // As the local gateway: revalidated on every load, so that an upload shows at once.
        let custom = policy["CustomHeadersConfig"]["Items"]
            .as_array()
            .expect("custom headers");
        let cache_control = custom
            .iter()
            .find(|header| {
                header["Header"]
                    .as_str()
                    .is_some_and(|name| name.eq_ignore_ascii_case("cache-control"))
            })
            .expect("a Cache-Control header");
        assert_eq!(cache_control["Value"], "no-cache");
        assert_eq!(cache_control["Override"], true);
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

    assert_eq!(
        reference(&outputs["ChatPageBucketName"]["Value"]),
        Some("ChatPageBucket")
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
    // aws s3 matches a filter against the whole path, so a pattern such as *.js would
    // also take web/node_modules/ and web/tests/.
    assert!(
        included.iter().all(|file| !file.contains(['*', '?', '['])),
        "files by name, no patterns: {included:?}"
    );
    assert!(upload.ends_with(" --delete"), "{upload}");
}

/// The origins the HTTP API allows, as the stack resolves them: the page's own origin stays
/// as written ([`PAGE_ORIGIN`]); `None` when it has no CORS configuration.
fn cors_origins(stack: &Stack<'_>) -> Option<Vec<String>> {
    let cors = stack.get(http_api::API).expect("the HTTP API")["Properties"]["Body"]
        .get("x-amazon-apigateway-cors")?
        .clone();
    // A string, a Fn::Sub of parameters and the distribution, or a parameter.
    let text = |value: &Value| -> String {
        if let Some(text) = value.as_str() {
            return text.to_owned();
        }
        if let Some(name) = reference(value) {
            return stack.parameter(name).as_str().expect("a String parameter").to_owned();
        }
        let written = sub(value).unwrap_or_else(|| panic!("unexpected origin {value}"));
        let origins = stack.parameter("HttpApiCorsOrigins");
        written.replace("${HttpApiCorsOrigins}", origins.as_str().expect("a String"))
    };
    let origins = match &cors["allowOrigins"] {
        Value::Array(origins) => origins.iter().map(text).collect(),
        split => {
            let [Value::String(delimiter), list] = split["Fn::Split"].as_array().map(Vec::as_slice).unwrap_or_default()
            else {
                panic!("allowOrigins must be a list or a Fn::Split: {split}")
            };
            text(list).split(delimiter.as_str()).map(str::to_owned).collect()
        }
    };
    Some(origins)
}

/// The hosted page calls the HTTP API from its distribution's origin: allowed besides the
/// origins of `HttpApiCorsOrigins` (with `*` already), even when those are none. No cycle:
/// the distribution depends on nothing of the API's (cfn-lint checks the whole graph).
#[test]
fn the_http_api_allows_the_hosted_pages_origin() {
    let cases: [(Option<&str>, Vec<&str>); 3] = [
        (None, vec!["*"]),
        (
            Some("https://chat.example.com,https://admin.example.com"),
            vec!["https://chat.example.com", "https://admin.example.com", PAGE_ORIGIN],
        ),
        (Some(""), vec![PAGE_ORIGIN]),
    ];
    for (given, expected) in cases {
        let mut parameters = vec![("ChatPage", "cloudfront"), ("JwksUrl", JWKS_URL)];
        if let Some(origins) = given {
            parameters.push(("HttpApiCorsOrigins", origins));
        }
        let stack = Template::with(&parameters).stack();
        assert_eq!(
            cors_origins(&stack),
            Some(expected.iter().map(|origin| origin.to_string()).collect()),
            "HttpApiCorsOrigins {given:?}"
        );
    }
    // Without the page, the origins given and nothing else.
    let stack = Template::with(&[
        ("HttpApiCorsOrigins", "https://chat.example.com"),
        ("JwksUrl", JWKS_URL),
    ])
    .stack();
    assert_eq!(cors_origins(&stack), Some(vec!["https://chat.example.com".to_owned()]));
    let stack = Template::with(&[("HttpApiCorsOrigins", ""), ("JwksUrl", JWKS_URL)]).stack();
    assert_eq!(cors_origins(&stack), None, "no page, no origins: no CORS");
}

/// cfn-lint on what CloudFormation receives for each choice: the transformed template, with
/// the parameter values (so that they are checked against the template's constraints and
/// substituted where they are used). W1028 (an `Fn::If` branch unreachable) is expected
/// once the values are fixed, so it is left out. The template as written, every condition
/// open, is linted by `cfn_lint_is_clean_on_the_template_and_infra`.
#[test]
fn cfn_lint_is_clean_with_the_chat_page_on_and_off() {
    let sets: [&[(&str, &str)]; 4] = [
        &[("JwksUrl", JWKS_URL)],
        &[("ChatPage", "cloudfront"), ("JwksUrl", JWKS_URL)],
        &[
            ("ChatPage", "cloudfront"),
            ("JwksUrl", JWKS_URL),
            ("HttpApiCorsOrigins", "https://chat.example.com"),
        ],
        &[("ChatPage", "cloudfront"), ("AuthMode", "none")],
    ];
    let directory = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chat-page-lint");
    std::fs::create_dir_all(&directory).expect("a directory for the transformed templates");
    std::thread::scope(|scope| {
        let runs: Vec<_> = sets
            .iter()
            .enumerate()
            .map(|(index, parameters)| {
                let template = Template::with(parameters);
                let file = directory.join(format!("template-{index}.json"));
                std::fs::write(&file, serde_json::to_vec_pretty(&template.document).unwrap())
                    .expect("the transformed template written");
                scope.spawn(move || {
                    let mut command = tool("cfn-lint");
                    command
                        .arg(&file)
                        .args(["--ignore-checks", "W1028", "--parameters"])
                        .args(template.given.iter().map(|(name, value)| format!("{name}={value}")));
                    (template.given.clone(), run(command))
                })
            })
            .collect();
        for handle in runs {
            let (given, output) = handle.join().expect("cfn-lint ran");
            assert!(
                output.status.success(),
                "cfn-lint with {given:?}:\n{}{}",
                text(&output.stdout),
                text(&output.stderr)
            );
        }
    });
}

/// A bucket's properties block every kind of public access and take no ACLs (the bucket
/// owner owns every object).
pub(super) fn assert_private(bucket: &Value) {
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
}
