//! What caps all callers together in AWS (issue 22, item 2; docs/abuse-bounds.md): stage
//! throttling on the WebSocket API and on the HTTP API, and reserved concurrency of the
//! functions that requests start, each from a parameter. Checked on the SAM transform.

use serde_json::{json, Value};

use super::{number, reference, Template, JWKS_URL};

/// Each function requests start, and the parameter of its reserved concurrency.
const RESERVED: &[(&str, &str)] = &[
    ("ConnectFunction", "ConnectReservedConcurrency"),
    ("MessageFunction", "MessageReservedConcurrency"),
    ("HttpApiFunction", "HttpApiReservedConcurrency"),
    ("AuthorizerFunction", "AuthorizerReservedConcurrency"),
];

/// The stage of `api` (`AWS::ApiGatewayV2::Stage` whose `ApiId` refers to it).
fn stage_of<'a>(template: &'a Template, api: &str) -> &'a Value {
    let stages: Vec<&Value> = template
        .of_type("AWS::ApiGatewayV2::Stage")
        .map(|(_, stage)| stage)
        .filter(|stage| reference(&stage["Properties"]["ApiId"]) == Some(api))
        .collect();
    assert_eq!(stages.len(), 1, "one stage of {api}");
    stages[0]
}

#[test]
fn both_apis_stages_are_throttled_by_parameters() {
    let template = Template::load();
    for (api, prefix) in [("WebSocketApi", "WebSocket"), ("HttpApi", "HttpApi")] {
        let settings = &stage_of(template, api)["Properties"]["DefaultRouteSettings"];
        for limit in ["ThrottlingRateLimit", "ThrottlingBurstLimit"] {
            let parameter = format!("{prefix}{limit}");
            assert_eq!(
                reference(&settings[limit]),
                Some(parameter.as_str()),
                "{api}'s stage: {settings}"
            );
            let declared = &template.document["Parameters"][&parameter];
            assert!(number(&declared["Default"]) >= 1, "{parameter} has a default");
            assert!(
                number(&declared["MinValue"]) >= 1,
                "{parameter}: 0 would refuse everything"
            );
        }
    }
    // The burst covers at least one second at the rate.
    let parameter = |name: &str| number(&template.document["Parameters"][name]["Default"]);
    assert!(parameter("WebSocketThrottlingBurstLimit") >= parameter("WebSocketThrottlingRateLimit"));
    assert!(parameter("HttpApiThrottlingBurstLimit") >= parameter("HttpApiThrottlingRateLimit"));
}

#[test]
fn request_functions_take_reserved_concurrency_from_parameters() {
    let unreserved = Template::load();
    let stack = unreserved.stack();
    for (function, parameter) in RESERVED {
        assert_eq!(stack.parameter(parameter), json!(""), "unreserved by default");
        let properties = &stack.get(function).expect("the function")["Properties"];
        assert!(
            properties.get("ReservedConcurrentExecutions").is_none(),
            "{function}: {properties}"
        );
    }
    let given: Vec<(&str, &str)> = RESERVED
        .iter()
        .map(|(_, parameter)| (*parameter, "25"))
        .chain([("JwksUrl", JWKS_URL)])
        .collect();
    let reserved = Template::with(&given);
    let stack = reserved.stack();
    for (function, parameter) in RESERVED {
        let properties = &stack.get(function).expect("the function")["Properties"];
        assert_eq!(
            reference(&properties["ReservedConcurrentExecutions"]),
            Some(*parameter),
            "{function}"
        );
        assert_eq!(stack.parameter(parameter), json!("25"));
        let pattern = reserved.document["Parameters"][parameter]["AllowedPattern"]
            .as_str()
            .expect("a pattern");
        assert_eq!(
            pattern, "^([1-9][0-9]{0,4})?$",
            "{parameter}: empty or a positive count"
        );
    }
}
