//! The HTTP API (docs/protocol.md, "HTTP API"): an `AWS::Serverless::HttpApi` on the `$default`
//! stage, only with sign-in on, whose every route is an entry of
//! [`roomcast_core::http::ROUTES`] (plus the open OpenAPI document) going through the JWT
//! authorizer by default; and http-api's function, which runs ws-message's commands and so
//! must be deployed as ws-message is: the same environment, VPC placement, timeout, table
//! and Kafka producer permissions.
//!
//! The function's `Events` and `CodeUri` are read from `template.yaml` as written (the SAM
//! transform turns them into an OpenAPI body and an S3 location), the rest from the
//! transformed template resolved by [`Stack`](super::Stack) for each parameter set.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use roomcast_core::http::{OPENAPI_PATH, ROUTES};
use serde_json::{json, Value};

use super::{arn_of, granted_to, kafka_setups, reference, run, sub, text, tool, Template, JWKS_URL, JWT_SECRET_ARN};

/// The HTTP API's logical id.
pub(super) const API: &str = "HttpApi";
/// http-api's function.
const FUNCTION: &str = "HttpApiFunction";
/// The function whose commands http-api runs, and so whose deployment it copies.
const WS_MESSAGE: &str = "MessageFunction";

/// The parameter sets of the three `AuthMode`s, each with a key source where it needs one.
fn auth_modes() -> [(&'static str, &'static Template); 3] {
    [
        (
            "required",
            Template::with(&[("AuthMode", "required"), ("JwksUrl", JWKS_URL)]),
        ),
        (
            "optional",
            Template::with(&[("AuthMode", "optional"), ("JwtSecretArn", JWT_SECRET_ARN)]),
        ),
        ("none", Template::with(&[("AuthMode", "none")])),
    ]
}

/// `template.yaml` as written, before the SAM transform, as JSON (short-form intrinsics as
/// their long form), parsed by aws-sam-translator's own YAML loader.
fn source() -> &'static Value {
    static SOURCE: OnceLock<Value> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let mut command = tool("python3");
        command.args([
            "-c",
            "import json, sys\n\
             from samtranslator.yaml_helper import yaml_parse\n\
             with open(sys.argv[1], encoding='utf-8') as file:\n    \
                 json.dump(yaml_parse(file.read()), sys.stdout)",
            "template.yaml",
        ]);
        let output = run(command);
        assert!(
            output.status.success(),
            "cannot read template.yaml:\n{}",
            text(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("template.yaml as JSON")
    })
}

/// A `Fn::Sub`'s text with the variables of its list form put back in place: a `Ref` as
/// `${Name}`, a `Fn::GetAtt` of an ARN as `${Name.Arn}`, a string as itself. So the
/// transform's `${__ApiId__}` with `{"Ref": "HttpApi"}` reads `${HttpApi}`.
fn substituted(value: &Value) -> String {
    let Some(Value::Array(parts)) = value.get("Fn::Sub") else {
        return sub(value)
            .unwrap_or_else(|| panic!("not a Fn::Sub: {value}"))
            .to_owned();
    };
    let mut text = parts
        .first()
        .and_then(Value::as_str)
        .expect("Fn::Sub's text")
        .to_owned();
    for (name, variable) in parts.get(1).and_then(Value::as_object).into_iter().flatten() {
        let replacement = if let Some(name) = reference(variable) {
            format!("${{{name}}}")
        } else if let Some(name) = arn_of(variable) {
            format!("${{{name}.Arn}}")
        } else if let Some(literal) = variable.as_str() {
            literal.to_owned()
        } else {
            panic!("unsupported Fn::Sub variable {name}: {variable}")
        };
        text = text.replace(&format!("${{{name}}}"), &replacement);
    }
    text
}

/// The routes the template must give the HTTP API: every entry of `ROUTES` behind the
/// authorizer (`true`), and the OpenAPI document open to anyone (`false`).
fn expected_routes() -> BTreeMap<(String, String), bool> {
    let mut routes: BTreeMap<(String, String), bool> = ROUTES
        .iter()
        .map(|route| ((route.method.to_uppercase(), route.path.to_owned()), true))
        .collect();
    assert_eq!(routes.len(), ROUTES.len(), "ROUTES has a method and path twice");
    let open = routes.insert(("GET".to_owned(), OPENAPI_PATH.to_owned()), false);
    assert!(open.is_none(), "{OPENAPI_PATH} is also in ROUTES");
    routes
}

/// What the HTTP API's authorizer permission must be: API Gateway may invoke
/// AuthorizerFunction for this API's authorizers. Called from the `$connect` authorizer
/// test in `deploy.rs` too, which finds it among the authorizer's permissions.
pub(super) fn assert_authorizer_permission(permission: &Value) {
    assert_eq!(
        arn_of(&permission["FunctionName"]),
        Some("AuthorizerFunction"),
        "{permission}"
    );
    assert_eq!(permission["Principal"], "apigateway.amazonaws.com", "{permission}");
    assert_eq!(permission["Action"], "lambda:InvokeFunction", "{permission}");
    assert_eq!(
        substituted(&permission["SourceArn"]),
        format!("arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{API}}}/authorizers/*"),
        "the HTTP API's authorizer permission must name this API's authorizers only"
    );
}

/// With `AuthMode` none there is no token to name a polling client by: no HTTP API, no
/// function, nothing that refers to them, no `HttpApiUrl` output. With sign-in on, all of
/// them.
#[test]
fn the_http_api_exists_only_with_sign_in_on() {
    for (mode, template) in auth_modes() {
        let stack = template.stack();
        assert!(
            stack.rule_failures().is_empty(),
            "AuthMode {mode}: {:?}",
            stack.rule_failures()
        );
        let on = mode != "none";
        assert_eq!(stack.condition("AuthOn"), on, "AuthMode {mode}");
        for name in [API, FUNCTION] {
            assert_eq!(
                template.get(name)["Condition"],
                "AuthOn",
                "{name} exists only with sign-in on"
            );
            assert_eq!(stack.get(name).is_some(), on, "AuthMode {mode}: {name}");
        }
        let role = arn_of(&template.get(FUNCTION)["Properties"]["Role"]).expect("http-api's role");
        assert_eq!(template.get(role)["Condition"], "AuthOn", "{role}");
        let output = &template.document["Outputs"]["HttpApiUrl"];
        assert_eq!(output["Condition"], "AuthOn", "the HttpApiUrl output");

        let apis: BTreeSet<&str> = stack.of_type("AWS::ApiGatewayV2::Api").map(|(name, _)| name).collect();
        let functions: BTreeSet<&str> = stack.of_type("AWS::Lambda::Function").map(|(name, _)| name).collect();
        if on {
            assert_eq!(apis, BTreeSet::from(["WebSocketApi", API]), "AuthMode {mode}");
            assert!(functions.contains(FUNCTION), "AuthMode {mode}: {functions:?}");
            assert!(stack.get(role).is_some(), "AuthMode {mode}: {role}");
        } else {
            assert_eq!(apis, BTreeSet::from(["WebSocketApi"]), "AuthMode none: no HTTP API");
            // Nothing left names the HTTP API, its function or its role (a dangling Ref
            // would fail the stack): the MSK producer policy leaves the role out too.
            let msk = Template::with(&[
                ("AuthMode", "none"),
                ("MskClusterArn", super::MSK_CLUSTER_ARN),
                ("VpcSubnetIds", "subnet-0a"),
                ("VpcSecurityGroupIds", "sg-0a"),
            ])
            .stack();
            assert!(msk.rule_failures().is_empty(), "{:?}", msk.rule_failures());
            assert!(msk.get("MskProducerPolicy").is_some());
            for stack in [&stack, &msk] {
                for (name, resource) in &stack.resources {
                    // The page's origins (a parameter, which the files' bucket CORS names
                    // too) are no reference to the API.
                    let written = resource.to_string().replace("HttpApiCorsOrigins", "");
                    assert!(
                        !written.contains(API),
                        "AuthMode none: {name} still refers to the HTTP API or its function: {written}"
                    );
                }
            }
        }
    }
}

/// The output, when there is an HTTP API: its `$default` stage's URL, with no stage part.
#[test]
fn the_http_api_url_is_an_output() {
    let outputs = &Template::load().document["Outputs"];
    let url = &outputs["HttpApiUrl"];
    assert_eq!(url["Condition"], "AuthOn");
    assert_eq!(
        sub(&url["Value"]),
        Some("https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"),
        "the HttpApiUrl output: the $default stage has no stage part in its URL: {url}"
    );
}

/// The HTTP API: on the `$default` stage (http-api routes on paths without a stage prefix),
/// deployed by itself; the JWT authorizer (AuthorizerFunction, payload format 2.0, simple
/// responses, the Authorization header as identity source, a short cache) as its default
/// authorizer, invokable by this API only; CORS for the methods of `ROUTES`.
#[test]
fn the_http_api_signs_in_with_the_jwt_authorizer_by_default() {
    // As written: one authorizer, the default.
    let written = &source()["Resources"][API];
    assert_eq!(written["Type"], "AWS::Serverless::HttpApi");
    let auth = &written["Properties"]["Auth"];
    let authorizers = auth["Authorizers"].as_object().expect("the HTTP API's Authorizers");
    assert_eq!(authorizers.len(), 1, "one authorizer: {authorizers:?}");
    let (name, authorizer) = authorizers.iter().next().expect("one");
    assert_eq!(auth["DefaultAuthorizer"], name.as_str(), "the default authorizer");
    assert_eq!(
        arn_of(&authorizer["FunctionArn"]),
        Some("AuthorizerFunction"),
        "{authorizer}"
    );
    assert_eq!(authorizer["AuthorizerPayloadFormatVersion"], "2.0", "{authorizer}");
    assert_eq!(authorizer["EnableSimpleResponses"], true, "{authorizer}");
    assert_eq!(authorizer["EnableFunctionDefaultPermissions"], true, "{authorizer}");
    assert_eq!(
        authorizer["Identity"]["Headers"],
        json!(["Authorization"]),
        "{authorizer}"
    );
    assert!(
        written["Properties"].get("StageName").is_none(),
        "no StageName: the HTTP API is served from its $default stage"
    );

    for (mode, template) in auth_modes() {
        if mode == "none" {
            continue;
        }
        let stack = template.stack();
        let api = stack.get(API).expect("the HTTP API");
        assert_eq!(api["Type"], "AWS::ApiGatewayV2::Api");
        let body = &api["Properties"]["Body"];

        // The authorizer, as API Gateway imports it.
        let schemes = body["components"]["securitySchemes"]
            .as_object()
            .expect("the OpenAPI body's security schemes");
        assert_eq!(schemes.keys().collect::<Vec<_>>(), [name], "AuthMode {mode}");
        let imported = &schemes[name]["x-amazon-apigateway-authorizer"];
        assert_eq!(imported["type"], "request", "{imported}");
        assert_eq!(imported["authorizerPayloadFormatVersion"], "2.0", "{imported}");
        assert_eq!(imported["enableSimpleResponses"], true, "{imported}");
        assert_eq!(
            imported["identitySource"],
            json!(["$request.header.Authorization"]),
            "no Authorization header: API Gateway answers 401 without invoking the authorizer"
        );
        let uri = substituted(&imported["authorizerUri"]);
        assert!(
            uri.contains(":apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/")
                && uri.ends_with("/${AuthorizerFunction.Arn}/invocations"),
            "the HTTP API's authorizer must invoke AuthorizerFunction: {uri}"
        );
        // Cached per token: a token found valid stays accepted that long after it expires.
        let ttl = imported["authorizerResultTtlInSeconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("the cache TTL must be an integer in the OpenAPI body: {imported}"));
        assert!(
            (1..=300).contains(&ttl),
            "authorizer cache {ttl} s: at most 5 minutes of an expired token still accepted"
        );

        // API Gateway may invoke it for this API's authorizers.
        let permissions: Vec<&Value> = stack
            .of_type("AWS::Lambda::Permission")
            .map(|(_, permission)| &permission["Properties"])
            .filter(|permission| arn_of(&permission["FunctionName"]) == Some("AuthorizerFunction"))
            .collect();
        assert_eq!(permissions.len(), 1, "AuthMode {mode}: {permissions:?}");
        assert_authorizer_permission(permissions[0]);

        // The $default stage, deploying itself; no explicit deployment.
        let stages: Vec<&Value> = stack
            .of_type("AWS::ApiGatewayV2::Stage")
            .map(|(_, stage)| &stage["Properties"])
            .filter(|stage| reference(&stage["ApiId"]) == Some(API))
            .collect();
        assert_eq!(stages.len(), 1, "AuthMode {mode}: one stage of the HTTP API");
        assert_eq!(
            stages[0]["StageName"], "$default",
            "http-api expects paths without a stage"
        );
        assert_eq!(stages[0]["AutoDeploy"], true, "the HTTP API's stage deploys itself");
        assert_eq!(stack.of_type("AWS::ApiGatewayV2::Deployment").count(), 0);
    }
}

/// CORS, for browser pages hosted elsewhere: the origins of `HttpApiCorsOrigins` (any by
/// default, none when it is empty), the two headers a client sends, the methods of
/// `ROUTES`.
#[test]
fn the_http_api_answers_cors_for_the_origins_given() {
    let methods: BTreeSet<String> = ROUTES.iter().map(|route| route.method.to_uppercase()).collect();
    let cases: [(Option<&str>, Option<Vec<&str>>); 3] = [
        (None, Some(vec!["*"])),
        (
            Some("https://chat.example.com,https://admin.example.com"),
            Some(vec!["https://chat.example.com", "https://admin.example.com"]),
        ),
        (Some(""), None),
    ];
    for (given, expected) in cases {
        let mut parameters = vec![("JwksUrl", JWKS_URL)];
        if let Some(origins) = given {
            parameters.push(("HttpApiCorsOrigins", origins));
        }
        let stack = Template::with(&parameters).stack();
        let body = &stack.get(API).expect("the HTTP API")["Properties"]["Body"];
        let cors = body.get("x-amazon-apigateway-cors");
        let Some(expected) = expected else {
            assert!(cors.is_none(), "HttpApiCorsOrigins empty: no CORS: {cors:?}");
            continue;
        };
        let cors = cors.unwrap_or_else(|| panic!("HttpApiCorsOrigins {given:?}: no CORS configuration"));
        // Fn::Split of the parameter, which the transform may already have put in.
        let origins: Vec<String> = match &cors["allowOrigins"] {
            Value::Array(origins) => origins.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            split => {
                let [Value::String(delimiter), list] =
                    split["Fn::Split"].as_array().map(Vec::as_slice).unwrap_or_default()
                else {
                    panic!("allowOrigins must be a list or a Fn::Split: {split}")
                };
                let list = match reference(list) {
                    Some(parameter) => stack.parameter(parameter),
                    None => list.clone(),
                };
                let list = list.as_str().unwrap_or_else(|| panic!("Fn::Split of {list}"));
                list.split(delimiter.as_str()).map(str::to_owned).collect()
            }
        };
        assert_eq!(origins, expected, "HttpApiCorsOrigins {given:?}");
        let headers: BTreeSet<String> = cors["allowHeaders"]
            .as_array()
            .expect("allowHeaders")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_lowercase)
            .collect();
        for header in ["authorization", "content-type"] {
            assert!(headers.contains(header), "CORS must allow {header}: {headers:?}");
        }
        let allowed: BTreeSet<String> = cors["allowMethods"]
            .as_array()
            .expect("allowMethods")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_uppercase)
            .collect();
        assert!(
            methods.is_subset(&allowed),
            "CORS must allow every method of ROUTES {methods:?}: {allowed:?}"
        );
        assert!(
            cors.get("allowCredentials")
                .is_none_or(|credentials| credentials == false),
            "a bearer token is no credential in CORS' sense: {cors}"
        );
    }
}

/// The function's events are exactly `roomcast_core::http::ROUTES` (so a route added in
/// Rust and not here fails) and the OpenAPI document with no authorizer, each on the HTTP
/// API; in the transformed template, each is a path of the HTTP API integrated with
/// http-api (payload format 2.0), behind the default authorizer or none, with its invoke
/// permission; and there is no other HTTP API (an event without `ApiId` would make one).
#[test]
fn the_http_api_routes_are_roomcast_core_http_routes() {
    let expected = expected_routes();

    // As written.
    let events = source()["Resources"][FUNCTION]["Properties"]["Events"]
        .as_object()
        .expect("http-api's Events");
    let mut written = BTreeMap::new();
    for (name, event) in events {
        assert_eq!(event["Type"], "HttpApi", "event {name}");
        let properties = &event["Properties"];
        assert_eq!(
            properties["ApiId"],
            json!({"Ref": API}),
            "event {name} must be on the HTTP API"
        );
        let method = properties["Method"].as_str().expect("Method").to_uppercase();
        let path = properties["Path"].as_str().expect("Path").to_owned();
        let authorized = match properties.get("Auth") {
            None => true,
            Some(auth) => {
                assert_eq!(auth, &json!({"Authorizer": "NONE"}), "event {name}'s Auth");
                false
            }
        };
        let twice = written.insert((method, path), authorized);
        assert!(twice.is_none(), "event {name} repeats a method and path");
    }
    assert_eq!(
        written, expected,
        "http-api's events (left) must be roomcast_core::http::ROUTES behind the authorizer and \
         GET {OPENAPI_PATH} with Auth: {{Authorizer: NONE}} (right)"
    );

    // Transformed.
    let stack = Template::load().stack();
    let body = &stack.get(API).expect("the HTTP API")["Properties"]["Body"];
    let schemes: Vec<&String> = body["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes")
        .keys()
        .collect();
    let [authorizer] = schemes.as_slice() else {
        panic!("one authorizer: {schemes:?}")
    };
    let mut served = BTreeMap::new();
    for (path, operations) in body["paths"].as_object().expect("the OpenAPI body's paths") {
        for (method, operation) in operations.as_object().expect("a path's operations") {
            let integration = &operation["x-amazon-apigateway-integration"];
            assert_eq!(integration["type"], "aws_proxy", "{method} {path}");
            assert_eq!(integration["payloadFormatVersion"], "2.0", "{method} {path}");
            let uri = sub(&integration["uri"]).unwrap_or_default();
            assert!(
                uri.ends_with(&format!("/functions/${{{FUNCTION}.Arn}}/invocations")),
                "{method} {path} must invoke http-api: {uri}"
            );
            let security = &operation["security"];
            let authorized = if *security == json!([{ "NONE": [] }]) {
                false
            } else {
                assert_eq!(
                    security,
                    &json!([{ authorizer.as_str(): [] }]),
                    "{method} {path}: the default authorizer"
                );
                true
            };
            served.insert((method.to_uppercase(), path.clone()), authorized);
        }
    }
    assert_eq!(served, expected, "the HTTP API's routes");

    let permissions: Vec<&Value> = stack
        .of_type("AWS::Lambda::Permission")
        .map(|(_, permission)| &permission["Properties"])
        .filter(|permission| reference(&permission["FunctionName"]) == Some(FUNCTION))
        .collect();
    assert_eq!(permissions.len(), expected.len(), "one invoke permission per route");
    for (method, path) in expected.keys() {
        let source = format!(
            "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{API}}}/*/{method}{}",
            path.split('/')
                .map(|segment| if segment.starts_with('{') { "*" } else { segment })
                .collect::<Vec<_>>()
                .join("/")
        );
        assert!(
            permissions.iter().any(|permission| {
                permission["Principal"] == "apigateway.amazonaws.com"
                    && permission["Action"] == "lambda:InvokeFunction"
                    && substituted(&permission["SourceArn"]) == source
            }),
            "no permission lets {method} {path} invoke http-api (SourceArn {source})"
        );
    }

    let apis: BTreeSet<&str> = stack.of_type("AWS::ApiGatewayV2::Api").map(|(name, _)| name).collect();
    assert_eq!(
        apis,
        BTreeSet::from(["WebSocketApi", API]),
        "no implicit HTTP API: every event names HttpApi"
    );
}

/// http-api runs ws-message's commands: in every Kafka set-up it has ws-message's
/// environment (whatever keys that has), VPC placement, timeout and memory, and a role of
/// its own granted what ws-message's is (the table, the history, producing to MSK).
#[test]
fn http_api_is_deployed_as_ws_message_is() {
    let written = &source()["Resources"][FUNCTION];
    assert_eq!(written["Type"], "AWS::Serverless::Function");
    assert_eq!(written["Properties"]["CodeUri"], "functions/http-api");
    assert_eq!(written["Metadata"]["BuildMethod"], "rust-cargolambda");
    assert_eq!(written["Metadata"]["BuildProperties"]["Binary"], "http-api");
    let manifest =
        std::fs::read_to_string(super::root().join("functions/http-api/Cargo.toml")).expect("http-api's Cargo.toml");
    assert!(
        manifest.contains("[[bin]]\nname = \"http-api\""),
        "functions/http-api builds the binary http-api"
    );

    for (setup, template) in kafka_setups() {
        let stack = template.stack();
        let function = stack.get(FUNCTION).expect("http-api's function");
        let message = stack.get(WS_MESSAGE).expect("ws-message's function");
        assert_eq!(function["Metadata"]["BuildProperties"]["Binary"], "http-api", "{setup}");
        let (properties, theirs) = (&function["Properties"], &message["Properties"]);
        for property in [
            "Environment",
            "VpcConfig",
            "Timeout",
            "MemorySize",
            "Runtime",
            "Handler",
            "Architectures",
        ] {
            assert_eq!(
                properties.get(property),
                theirs.get(property),
                "{setup}: http-api's {property} must be ws-message's"
            );
        }
        assert!(
            properties["Environment"]["Variables"]
                .as_object()
                .is_some_and(|variables| variables.contains_key("ROOMCAST_TABLE")
                    && variables.contains_key("ROOMCAST_KAFKA_BOOTSTRAP")),
            "{setup}: {}",
            properties["Environment"]
        );
        if setup == "MSK" {
            assert!(
                properties.get("VpcConfig").is_some(),
                "{setup}: http-api produces from the VPC"
            );
        }
        // Under the HTTP API's 30 s integration limit.
        let timeout = properties["Timeout"].as_u64().expect("a timeout");
        assert!(timeout < 30, "{setup}: http-api's timeout {timeout} s");

        let role = arn_of(&properties["Role"]).expect("http-api's role");
        let their_role = arn_of(&theirs["Role"]).expect("ws-message's role");
        assert_ne!(role, their_role, "a role of its own");
        let (own, other) = (
            &stack.get(role).expect("http-api's role")["Properties"],
            &stack.get(their_role).expect("ws-message's role")["Properties"],
        );
        for property in ["AssumeRolePolicyDocument", "ManagedPolicyArns"] {
            assert_eq!(
                own.get(property),
                other.get(property),
                "{setup}: {role}'s {property} must be {their_role}'s"
            );
        }
        let granted = |role: &str| -> BTreeSet<String> {
            granted_to(&stack.resources, role)
                .iter()
                .map(Value::to_string)
                .collect()
        };
        let (own, other) = (granted(role), granted(their_role));
        assert_eq!(
            own, other,
            "{setup}: {role} must be granted what {their_role} is (the same commands)"
        );
        let actions: BTreeSet<String> = granted_to(&stack.resources, role)
            .iter()
            .flat_map(super::actions_of)
            .collect();
        let needed: &[&str] = match setup {
            "MSK" => &[
                "dynamodb:GetItem",
                "dynamodb:Query",
                "kafka-cluster:Connect",
                "kafka-cluster:WriteData",
                "kafka-cluster:WriteDataIdempotently",
            ],
            _ => &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"],
        };
        for action in needed {
            assert!(actions.contains(*action), "{setup}: {role} needs {action}: {actions:?}");
        }
    }
}
