//! Sign-in in the template: the $connect authorizer and the HTTP API's, their key sources
//! and rules, the secrets they and the producers read, and what the outputs say.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

/// `AuthMode`'s three values, the stack each makes (with a key source where it needs one),
/// and the authorizer wiring each must have.
#[test]
fn connect_goes_through_the_authorizer_unless_auth_mode_is_none() {
    for mode in ["required", "optional", "none"] {
        let mut parameters = vec![("AuthMode", mode)];
        if mode != "none" {
            parameters.push(("JwksUrl", JWKS_URL));
        }
        let template = Template::with(&parameters);
        let stack = template.stack();
        assert!(
            stack.rule_failures().is_empty(),
            "AuthMode {mode}: {:?}",
            stack.rule_failures()
        );
        let connect = stack.get("ConnectRoute").expect("ConnectRoute");
        let route = &connect["Properties"];
        assert_eq!(route["RouteKey"], "$connect");

        // Every function that reads the configuration knows the mode (ws-message: only the
        // admin role may send to the broadcast room when auth is on).
        for (name, _) in FUNCTIONS {
            if let Some(function) = stack.get(name) {
                assert_eq!(
                    reference(&function["Properties"]["Environment"]["Variables"]["ROOMCAST_AUTH"]),
                    Some("AuthMode"),
                    "{name}"
                );
            }
        }
        assert!(stack.get("MessageFunction").is_some());
        assert_eq!(stack.parameter("AuthMode"), mode, "the value the functions get");

        let authorizers: Vec<_> = stack.of_type("AWS::ApiGatewayV2::Authorizer").collect();
        if mode == "none" {
            assert_eq!(route["AuthorizationType"], "NONE", "AuthMode none: $connect is open");
            assert!(route.get("AuthorizerId").is_none(), "AuthMode none: {route}");
            assert!(
                authorizers.is_empty(),
                "AuthMode none needs no authorizer: {authorizers:?}"
            );
            for name in ["AuthorizerFunction", "AuthorizerRole", "AuthorizerPermission"] {
                assert!(stack.get(name).is_none(), "AuthMode none: no {name}");
            }
            continue;
        }

        // The authorizer: REQUEST, on this API, invoking AuthorizerFunction.
        assert_eq!(authorizers.len(), 1, "AuthMode {mode}: one authorizer");
        let (authorizer, resource) = authorizers[0];
        let properties = &resource["Properties"];
        assert_eq!(properties["AuthorizerType"], "REQUEST", "{authorizer}");
        assert_eq!(reference(&properties["ApiId"]), Some("WebSocketApi"), "{authorizer}");
        let uri = sub(&properties["AuthorizerUri"]).unwrap_or_default();
        assert!(
            uri.starts_with("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/")
                && uri.ends_with("/${AuthorizerFunction.Arn}/invocations"),
            "{authorizer} must invoke AuthorizerFunction: {uri}"
        );
        // required: API Gateway itself answers 401 to a handshake without ?token=. optional:
        // no identity source, or that same 401 would turn anonymous users away before the
        // function could let them in.
        let identity = properties.get("IdentitySource");
        if mode == "required" {
            assert_eq!(
                identity,
                Some(&serde_json::json!(["route.request.querystring.token"])),
                "AuthMode required: the token query parameter is the identity source"
            );
        } else {
            assert!(
                identity.is_none_or(|sources| sources.as_array().is_some_and(Vec::is_empty)),
                "AuthMode optional: no identity source, or tokenless handshakes get 401: {identity:?}"
            );
        }

        // $connect uses it.
        assert_eq!(route["AuthorizationType"], "CUSTOM", "AuthMode {mode}");
        assert_eq!(reference(&route["AuthorizerId"]), Some(authorizer), "AuthMode {mode}");

        // API Gateway may invoke the function for this API's authorizer and for the HTTP
        // API's (see deploy/http_api.rs), and nothing else.
        let permissions: Vec<&Value> = stack
            .of_type("AWS::Lambda::Permission")
            .map(|(_, permission)| &permission["Properties"])
            .filter(|permission| {
                let function = &permission["FunctionName"];
                reference(function).or_else(|| arn_of(function)) == Some("AuthorizerFunction")
            })
            .collect();
        assert_eq!(
            permissions.len(),
            2,
            "AuthMode {mode}: two invoke permissions for the authorizer, the WebSocket API's and the HTTP API's"
        );
        let (permission, http) = match permissions.as_slice() {
            [first, second] if reference(&first["FunctionName"]).is_some() => (*first, *second),
            [first, second] => (*second, *first),
            _ => unreachable!(),
        };
        http_api::assert_authorizer_permission(http);
        assert_eq!(permission["Principal"], "apigateway.amazonaws.com");
        assert_eq!(permission["Action"], "lambda:InvokeFunction");
        let source = sub(&permission["SourceArn"]).unwrap_or_default();
        assert_eq!(
            source,
            format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{WebSocketApi}}/authorizers/${{{authorizer}}}"
            ),
            "the authorizer's permission must name this API's authorizer"
        );

        // The function: built like the others, outside the VPC (it reaches the JWKS URL
        // or Secrets Manager, not the brokers), with its mode and key source.
        let function = stack.get("AuthorizerFunction").expect("AuthorizerFunction");
        assert_eq!(function["Metadata"]["BuildProperties"]["Binary"], "ws-authorizer");
        assert!(
            function["Properties"].get("VpcConfig").is_none(),
            "the authorizer is not in the VPC"
        );
        let variables = &function["Properties"]["Environment"]["Variables"];
        assert_eq!(
            reference(&variables["ROOMCAST_JWKS_URL"]),
            Some("JwksUrl"),
            "{variables}"
        );
        assert!(variables.get("ROOMCAST_JWT_SECRET_ARN").is_none(), "{variables}");
    }
}

/// HS256 with a Secrets Manager secret: the authorizer gets the secret's ARN and may read
/// that secret and no other; the optional claims settings reach it when given.
#[test]
fn the_authorizer_may_read_its_jwt_secret_and_nothing_else() {
    let template = Template::with(&[
        ("AuthMode", "optional"),
        ("JwtSecretArn", JWT_SECRET_ARN),
        ("JwtIssuer", "https://issuer.example"),
        ("JwtAudience", "roomcast"),
        ("JwtNickClaim", "preferred_username"),
        ("JwtRolesClaim", "cognito:groups"),
    ]);
    let stack = template.stack();
    assert!(stack.rule_failures().is_empty(), "{:?}", stack.rule_failures());
    let function = stack.get("AuthorizerFunction").expect("AuthorizerFunction");
    let variables = function["Properties"]["Environment"]["Variables"]
        .as_object()
        .expect("the authorizer's environment");
    let expected = [
        ("ROOMCAST_AUTH", "AuthMode"),
        ("ROOMCAST_JWT_SECRET_ARN", "JwtSecretArn"),
        ("ROOMCAST_JWT_ISSUER", "JwtIssuer"),
        ("ROOMCAST_JWT_AUDIENCE", "JwtAudience"),
        ("ROOMCAST_JWT_NICK_CLAIM", "JwtNickClaim"),
        ("ROOMCAST_JWT_ROLES_CLAIM", "JwtRolesClaim"),
    ];
    for (variable, parameter) in expected {
        assert_eq!(reference(&variables[variable]), Some(parameter), "{variable}");
    }
    assert!(
        !variables.contains_key("ROOMCAST_JWKS_URL"),
        "HS256 only: {variables:?}"
    );
    assert_eq!(stack.parameter("JwtSecretArn"), JWT_SECRET_ARN);

    // Its role reads exactly that secret.
    let role = arn_of(&function["Properties"]["Role"]).expect("the authorizer's role");
    let resources: BTreeMap<String, Value> = stack
        .get(role)
        .map(|resource| BTreeMap::from([(role.to_owned(), resource.clone())]))
        .expect("the authorizer's role");
    let granted = statements(&resources);
    let secret_reads: Vec<&Value> = granted
        .iter()
        .map(|(_, statement)| statement)
        .filter(|statement| actions_of(statement).iter().any(|a| a.starts_with("secretsmanager:")))
        .collect();
    assert_eq!(secret_reads.len(), 1, "{granted:?}");
    assert_eq!(actions_of(secret_reads[0]), ["secretsmanager:GetSecretValue"]);
    assert_eq!(reference(&secret_reads[0]["Resource"]), Some("JwtSecretArn"));
    assert_eq!(secret_reads[0]["Effect"], "Allow");
    for (_, statement) in &granted {
        for action in actions_of(statement) {
            assert!(
                action == "secretsmanager:GetSecretValue",
                "the authorizer's role grants {action}: it needs the secret and its logs only"
            );
        }
    }
    // No other role may read it.
    for (owner, statement) in statements(&stack.resources) {
        if owner != role {
            assert_ne!(reference(&statement["Resource"]), Some("JwtSecretArn"), "{owner}");
        }
    }

    // With a JWKS URL instead, no secret at all.
    let jwks = Template::with(&[("AuthMode", "required"), ("JwksUrl", JWKS_URL)]).stack();
    let role = jwks.get(role).expect("the authorizer's role");
    assert!(
        role["Properties"].get("Policies").is_none(),
        "with a JWKS URL the authorizer's role needs no policy: {role}"
    );
}

/// The `Rules`: with sign-in on, exactly one key source, or CloudFormation refuses the
/// stack before creating anything. Checked both by structure and by evaluating them.
#[test]
fn the_rules_refuse_sign_in_without_exactly_one_key_source() {
    let template = Template::load();
    let rule = &template.document["Rules"]["SignInNeedsOneKeySource"];
    assert_eq!(
        rule["RuleCondition"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "AuthMode"}, "none"]}]}),
        "the rule applies whenever AuthMode is not none"
    );
    let assertions = rule["Assertions"].as_array().expect("Assertions");
    assert_eq!(assertions.len(), 2, "one key source at least, at most one");
    for assertion in assertions {
        let description = assertion["AssertDescription"].as_str().unwrap_or_default();
        assert!(
            description.contains("JwksUrl") && description.contains("JwtSecretArn"),
            "a failed assertion must say what to give: {description:?}"
        );
    }
    assert_eq!(
        template.document["Parameters"]["AuthMode"]["Default"], "required",
        "anonymous access must be chosen, not defaulted"
    );

    let cases: &[(&[(&str, &str)], bool)] = &[
        (&[], false),
        (&[("AuthMode", "required")], false),
        (&[("AuthMode", "optional")], false),
        (
            &[
                ("AuthMode", "required"),
                ("JwksUrl", JWKS_URL),
                ("JwtSecretArn", JWT_SECRET_ARN),
            ],
            false,
        ),
        (&[("AuthMode", "required"), ("JwksUrl", JWKS_URL)], true),
        (&[("AuthMode", "required"), ("JwtSecretArn", JWT_SECRET_ARN)], true),
        (&[("AuthMode", "optional"), ("JwtSecretArn", JWT_SECRET_ARN)], true),
        (&[("AuthMode", "none")], true),
    ];
    for (parameters, accepted) in cases {
        let failures = Template::with(parameters).stack().rule_failures();
        assert_eq!(
            failures.is_empty(),
            *accepted,
            "{parameters:?} must be {}: {failures:?}",
            if *accepted { "accepted" } else { "refused" }
        );
        if !accepted {
            assert!(
                failures
                    .iter()
                    .all(|failure| failure.starts_with("SignInNeedsOneKeySource:")),
                "{parameters:?}: {failures:?}"
            );
        }
    }
    // A JWKS without its issuer is refused too: the authorizer would not start.
    let rule = &template.document["Rules"]["JwksNeedsIssuer"];
    assert_eq!(
        rule["RuleCondition"],
        serde_json::json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "JwksUrl"}, ""]}]}),
    );
    for parameters in [
        &[("JwksUrl", JWKS_URL), ("JwtIssuer", "")][..],
        &[("AuthMode", "none"), ("JwksUrl", JWKS_URL), ("JwtIssuer", "")][..],
    ] {
        let failures = Template::with(parameters).stack().rule_failures();
        assert_eq!(failures.len(), 1, "{parameters:?}: {failures:?}");
        assert!(
            failures[0].starts_with("JwksNeedsIssuer:") && failures[0].contains("JwtIssuer"),
            "{failures:?}"
        );
    }
    let with_issuer = Template::with(&[("JwksUrl", JWKS_URL), ("JwtIssuer", JWKS_ISSUER)]).stack();
    assert!(
        with_issuer.rule_failures().is_empty(),
        "{:?}",
        with_issuer.rule_failures()
    );

    // The rule that was already there still holds: MSK needs the VPC.
    let msk = Template::with(&[
        ("JwksUrl", JWKS_URL),
        (
            "MskClusterArn",
            "arn:aws:kafka:eu-west-1:123456789012:cluster/roomcast/abc",
        ),
    ]);
    assert!(
        msk.stack()
            .rule_failures()
            .iter()
            .any(|failure| failure.starts_with("MskNeedsVpc:")),
        "MSK without subnets must be refused"
    );
}

/// `LogLevel`'s description warns that `trace` logs raw events, tokens included (the
/// Lambda runtime logs each event's body at trace).
#[test]
fn the_log_level_says_that_trace_logs_tokens() {
    let description = Template::load().document["Parameters"]["LogLevel"]["Description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for words in ["Never trace in production", "raw event", "tokens included"] {
        assert!(description.contains(words), "{words:?} missing from {description:?}");
    }
}

/// With SCRAM, the producers get the secret's ARN, never its user name or password (which
/// `lambda:GetFunctionConfiguration` would show), and may read that secret.
#[test]
fn the_producers_read_the_kafka_secret_at_cold_start() {
    let (_, template) = &kafka_setups()[1];
    let stack = template.stack();
    for producer in PRODUCERS {
        let function = stack.get(producer).unwrap_or_else(|| panic!("{producer}"));
        let variables = &function["Properties"]["Environment"]["Variables"];
        assert_eq!(variables["ROOMCAST_KAFKA_AUTH"], "scram-sha-512", "{producer}");
        assert_eq!(
            reference(&variables["ROOMCAST_KAFKA_SECRET_ARN"]),
            Some("KafkaSecretArn"),
            "{producer}"
        );
        let shown = variables.to_string();
        assert!(
            !shown.contains("resolve:secretsmanager") && !shown.contains("PASSWORD"),
            "{producer}: {shown}"
        );
        let role = arn_of(&function["Properties"]["Role"]).expect("a role");
        assert!(
            granted_to(&stack.resources, role).iter().any(|statement| {
                actions_of(statement).contains(&"secretsmanager:GetSecretValue".to_owned())
                    && reference(&statement["Resource"]) == Some("KafkaSecretArn")
            }),
            "{producer}'s role {role} must read the Kafka secret"
        );
    }
}

/// How to connect, for the stack's mode.
#[test]
fn the_outputs_say_how_to_connect() {
    let outputs = &Template::load().document["Outputs"];
    let url = sub(&outputs["WebSocketUrl"]["Value"]).unwrap_or_default();
    assert!(url.starts_with("wss://${WebSocketApi}.execute-api."), "{url}");
    assert!(
        outputs["WebSocketUrl"]["Description"]
            .as_str()
            .is_some_and(|description| description.contains("?token=")),
        "the WebSocketUrl output must say how the token is passed"
    );
    for (mode, query) in [("required", "?token="), ("optional", "?token="), ("none", "?name=")] {
        let mut parameters = vec![("AuthMode", mode)];
        if mode != "none" {
            parameters.push(("JwksUrl", JWKS_URL));
        }
        let stack = Template::with(&parameters).stack();
        let example = stack
            .resolve(&stack.template.document["Outputs"]["ConnectExample"]["Value"])
            .expect("ConnectExample");
        let example = sub(&example).unwrap_or_default();
        assert!(example.contains(query), "AuthMode {mode}: {example}");
    }
}
