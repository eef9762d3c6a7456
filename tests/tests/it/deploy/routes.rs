//! The WebSocket API's routes: every action of the protocol a route with its integration,
//! its Lambda permission and its route response, and the stage that deploys itself.

use std::collections::{BTreeMap, BTreeSet};

use roomcast_core::commands::ACTIONS;
use serde_json::Value;

use super::{http_api, reference, sub, Template};

fn function_for_route(route_key: &str) -> &'static str {
    match route_key {
        "$connect" => "ConnectFunction",
        "$disconnect" => "DisconnectFunction",
        _ => "MessageFunction",
    }
}

#[test]
fn the_transformed_template_has_every_route_with_its_integration_permission_and_response() {
    let template = Template::load();

    // The WebSocket API; the HTTP API, the other AWS::ApiGatewayV2::Api, is checked in
    // deploy/http_api.rs.
    let apis: Vec<_> = template
        .of_type("AWS::ApiGatewayV2::Api")
        .filter(|(name, _)| *name != http_api::API)
        .collect();
    assert_eq!(apis.len(), 1, "one WebSocket API besides the HTTP API: {apis:?}");
    let (api, api_resource) = apis[0];
    assert_eq!(api_resource["Properties"]["ProtocolType"], "WEBSOCKET");
    assert_eq!(
        api_resource["Properties"]["RouteSelectionExpression"],
        "$request.body.action"
    );

    let routes: BTreeMap<String, (&str, &Value)> = template
        .of_type("AWS::ApiGatewayV2::Route")
        .map(|(name, route)| {
            assert_eq!(reference(&route["Properties"]["ApiId"]), Some(api), "{name}'s ApiId");
            let key = route["Properties"]["RouteKey"].as_str().expect("RouteKey").to_owned();
            (key, (name, route))
        })
        .collect();
    let expected: BTreeSet<String> = ["$connect", "$disconnect", "$default"]
        .into_iter()
        .chain(ACTIONS.iter().copied())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        routes.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the routes must be $connect, $disconnect, $default and exactly roomcast_core::commands::ACTIONS"
    );
    for action in ["dm", "who"] {
        assert!(routes.contains_key(action), "no route for {action}");
    }

    let permissions: Vec<&Value> = template
        .of_type("AWS::Lambda::Permission")
        .map(|(_, permission)| &permission["Properties"])
        .collect();
    let responses: Vec<&Value> = template
        .of_type("AWS::ApiGatewayV2::RouteResponse")
        .map(|(_, response)| &response["Properties"])
        .collect();

    for (key, (name, route)) in &routes {
        let properties = &route["Properties"];
        let function = function_for_route(key);

        // The integration: AWS_PROXY to the route's function.
        let target = sub(&properties["Target"]).unwrap_or_else(|| panic!("{name}: Target is not a Fn::Sub"));
        let integration = target
            .strip_prefix("integrations/${")
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{name}: Target {target:?} is not integrations/${{Integration}}"));
        let integration = &template.get(integration)["Properties"];
        assert_eq!(integration["IntegrationType"], "AWS_PROXY", "{name}'s integration");
        let uri = sub(&integration["IntegrationUri"]).unwrap_or_default();
        assert!(
            uri.contains(&format!("${{{function}.Arn}}")) && uri.ends_with("/invocations"),
            "{name}'s integration must invoke {function}: {uri}"
        );

        // The permission: API Gateway may invoke the function for this stage and route.
        let source_suffix = format!("${{WebSocketApi}}/${{StageName}}/{key}");
        assert!(
            permissions.iter().any(|permission| {
                reference(&permission["FunctionName"]) == Some(function)
                    && permission["Principal"] == "apigateway.amazonaws.com"
                    && permission["Action"] == "lambda:InvokeFunction"
                    && sub(&permission["SourceArn"]).is_some_and(|arn| arn.ends_with(&source_suffix))
            }),
            "no Lambda permission lets route {key} invoke {function} (SourceArn ending {source_suffix})"
        );

        // The route response: every message route returns ws-message's body to the client.
        let has_response = responses.iter().any(|response| {
            reference(&response["RouteId"]) == Some(*name) && response["RouteResponseKey"] == "$default"
        });
        if key.starts_with("$connect") || key.starts_with("$disconnect") {
            assert!(!has_response, "{key} needs no route response");
        } else {
            assert_eq!(
                properties["RouteResponseSelectionExpression"], "$default",
                "{name} needs RouteResponseSelectionExpression $default"
            );
            assert!(
                has_response,
                "{name} has no $default route response: its replies would be dropped"
            );
        }
        // Only $connect may have an authorizer (API Gateway's rule); every other route is open
        // to a connection that got past it.
        if *key != "$connect" {
            assert_eq!(properties["AuthorizationType"], "NONE", "{name}");
        }
    }

    // The stage deploys itself on every change of the API: an explicit Deployment is a
    // snapshot CloudFormation never retakes, which would leave a changed route - or a
    // $connect whose authorizer was just switched on - undeployed. Its first deployment
    // waits for every route and route response.
    let deployments: Vec<_> = template.of_type("AWS::ApiGatewayV2::Deployment").collect();
    assert!(
        deployments.is_empty(),
        "no explicit Deployment: the stage deploys itself (AutoDeploy): {deployments:?}"
    );
    let stages: Vec<_> = template
        .of_type("AWS::ApiGatewayV2::Stage")
        .filter(|(_, stage)| reference(&stage["Properties"]["ApiId"]) == Some(api))
        .collect();
    assert_eq!(stages.len(), 1, "one Stage of the WebSocket API");
    let stage = stages[0].1;
    assert_eq!(reference(&stage["Properties"]["ApiId"]), Some(api));
    assert_eq!(stage["Properties"]["AutoDeploy"], true, "the Stage must deploy itself");
    assert!(
        stage["Properties"].get("DeploymentId").is_none(),
        "a Stage with AutoDeploy takes no DeploymentId"
    );
    let depends_on: BTreeSet<&str> = stage["DependsOn"]
        .as_array()
        .expect("the Stage's DependsOn")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (key, (name, _)) in &routes {
        assert!(
            depends_on.contains(name),
            "the Stage must DependsOn route {key} ({name})"
        );
    }
    for (name, response) in template.of_type("AWS::ApiGatewayV2::RouteResponse") {
        let route = reference(&response["Properties"]["RouteId"]).unwrap_or_default();
        assert!(
            depends_on.contains(name),
            "the Stage must DependsOn {name}, the route response of {route}"
        );
    }
}
