//! The OpenAPI document itself: the gateway serves the repository's file byte for byte,
//! without a token, and it is a sound OpenAPI 3.0 document (every `$ref` resolves, every
//! schema compiles as JSON Schema, the error codes are exactly the protocol's) whose
//! operations are exactly `roomcast_core::http::ROUTES`, the document's own route and the
//! local gateway's `POST /api/dev/token`. [`Document`] is what the other checks read it with.

use std::collections::BTreeSet;
use std::path::Path;

use roomcast_core::error::ErrorCode;
use roomcast_core::http::{OPENAPI_PATH, ROUTES};
use roomcast_local::http_api::DEV_TOKEN_PATH;
use serde_json::{json, Value};

use super::{content_type, dev_settings, http_client, start, JSON};

/// The document as kept in the repository.
fn repository_document() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions/http-api/openapi.json");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The OpenAPI document, parsed, with what the checks look up in it.
pub(super) struct Document {
    pub(super) json: Value,
}

impl Document {
    pub(super) fn load() -> Document {
        let text = repository_document();
        let json = serde_json::from_str(&text).expect("openapi.json is JSON");
        Document { json }
    }

    /// Every operation: `(METHOD, path template, operation)`.
    pub(super) fn operations(&self) -> Vec<(String, String, &Value)> {
        let paths = self.json["paths"].as_object().expect("`paths` is an object");
        let mut operations = Vec::new();
        for (path, item) in paths {
            for (method, operation) in item.as_object().expect("a path item is an object") {
                if method != "parameters" {
                    operations.push((method.to_ascii_uppercase(), path.clone(), operation));
                }
            }
        }
        operations
    }

    pub(super) fn operation(&self, method: &str, path: &str) -> &Value {
        let operation = &self.json["paths"][path][method.to_ascii_lowercase()];
        assert!(operation.is_object(), "the document has no operation {method} {path}");
        operation
    }

    /// What `reference` (`#/components/...`) points at.
    pub(super) fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("`{reference}` is not local"));
                self.json
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("`{reference}` points at nothing"))
            }
            None => value,
        }
    }

    /// The statuses an operation declares, as numbers.
    pub(super) fn statuses(&self, method: &str, path: &str) -> BTreeSet<u16> {
        self.operation(method, path)["responses"]
            .as_object()
            .expect("`responses` is an object")
            .keys()
            .map(|status| {
                status
                    .parse()
                    .unwrap_or_else(|_| panic!("{method} {path}: status `{status}`"))
            })
            .collect()
    }

    /// The schema of an operation's answer with `status`, if it declares that status.
    pub(super) fn response_schema(&self, method: &str, path: &str, status: u16) -> Option<&Value> {
        let response = self.operation(method, path)["responses"].get(status.to_string())?;
        let response = self.resolve(response);
        Some(&response["content"][JSON]["schema"])
    }

    /// The schema `#/components/schemas/{name}`.
    pub(super) fn schema(&self, name: &str) -> &Value {
        let schema = &self.json["components"]["schemas"][name];
        assert!(schema.is_object(), "no schema {name}");
        schema
    }

    /// A validator of `schema`, with `$ref`s into the document's components. The schemas of
    /// OpenAPI 3.0 are JSON Schema (draft 4's dialect, less `nullable`, which the document
    /// does not use): the schema goes into a root that holds the components, so that
    /// `#/components/schemas/...` resolves there, and is validated as draft 4.
    pub(super) fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let root = json!({
            "components": self.json["components"],
            "allOf": [schema],
        });
        jsonschema::draft4::new(&root).unwrap_or_else(|error| panic!("the schema {schema} does not compile: {error}"))
    }

    /// Why `instance` is not valid against `schema`, or `None`.
    pub(super) fn invalid(&self, schema: &Value, instance: &Value) -> Option<String> {
        let validator = self.validator(schema);
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }
}

/// Every `$ref` in `value`, with where it is (the keys that lead to it).
fn references<'a>(value: &'a Value, at: &mut Vec<String>, found: &mut Vec<(Vec<String>, &'a str)>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                match (name.as_str(), field) {
                    ("$ref", Value::String(reference)) => found.push((at.clone(), reference)),
                    _ => {
                        at.push(name.clone());
                        references(field, at, found);
                        at.pop();
                    }
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                at.push(index.to_string());
                references(item, at, found);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Every error code of the protocol, in order. The match is exhaustive: a new code fails
/// to compile here until it is listed (and then until the document has it).
fn every_error_code() -> Vec<ErrorCode> {
    fn after(code: Option<ErrorCode>) -> Option<ErrorCode> {
        use ErrorCode::*;
        match code {
            None => Some(BadRequest),
            Some(BadRequest) => Some(UnknownAction),
            Some(UnknownAction) => Some(NotMember),
            Some(NotMember) => Some(Forbidden),
            Some(Forbidden) => Some(NotFound),
            Some(NotFound) => Some(TooLarge),
            Some(TooLarge) => Some(Conflict),
            Some(Conflict) => Some(RateLimited),
            Some(RateLimited) => Some(Unavailable),
            Some(Unavailable) => Some(Unauthorized),
            Some(Unauthorized) => None,
        }
    }
    std::iter::successors(after(None), |code| after(Some(*code))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_repositorys_and_a_sound_openapi_3_0_document() {
    let gateway = start(dev_settings()).await;
    let http = http_client();
    // Served to anyone: no Authorization header.
    let response = http
        .get(format!("{}{OPENAPI_PATH}", gateway.http_url()))
        .send()
        .await
        .expect("GET /api/openapi.json");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(content_type(&response).as_deref(), Some(JSON));
    let served = response.bytes().await.expect("the document's bytes");
    let kept = repository_document();
    assert!(
        served.as_ref() == kept.as_bytes(),
        "the served document differs from functions/http-api/openapi.json (rebuild?)"
    );
    gateway.shutdown().await;

    let doc = Document::load();
    let json = &doc.json;
    assert_eq!(json["openapi"], "3.0.3");
    assert_eq!(json["info"]["title"], "roomcast HTTP API");
    assert!(json["info"]["version"].as_str().is_some_and(|v| !v.is_empty()));
    let description = json["info"]["description"].as_str().expect("info.description");
    for needle in ["Bearer", "`after`", "unauthorized", "not_member", "unavailable"] {
        assert!(
            description.contains(needle),
            "info.description says nothing of {needle}"
        );
    }
    assert_eq!(json["servers"][0]["url"], "/");
    assert_eq!(json["security"], json!([{"bearerAuth": []}]));
    let scheme = &json["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"], &scheme["bearerFormat"]),
        (&json!("http"), &json!("bearer"), &json!("JWT"))
    );

    // Every reference resolves, to a component of the kind its place needs.
    let mut found = Vec::new();
    references(json, &mut Vec::new(), &mut found);
    assert!(found.len() > 50, "the document refers to its components");
    for (at, reference) in &found {
        let at_text = at.join(" > ");
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at_text}: `{reference}` is not local"));
        assert!(
            json.pointer(pointer).is_some(),
            "{at_text}: `{reference}` points at nothing"
        );
        // A parameter of a path or an operation, a response of an operation, or a schema.
        let parent = at.iter().rev().nth(1).map(String::as_str);
        let kind = match (at[0].as_str(), parent) {
            ("paths", Some("parameters")) => "parameters",
            ("paths", Some("responses")) => "responses",
            _ => "schemas",
        };
        assert!(
            reference.starts_with(&format!("#/components/{kind}/")),
            "{at_text}: `{reference}` should be one of #/components/{kind}"
        );
    }
    // No `nullable` (OpenAPI 3.0 only): plain JSON Schema validation must be exact.
    assert!(!repository_document().contains("\"nullable\""));

    // Every schema is JSON Schema (draft 4's meta-schema) and compiles with its references.
    let schemas = json["components"]["schemas"].as_object().expect("components.schemas");
    for (name, schema) in schemas {
        if let Err(error) = jsonschema::draft4::meta::validate(schema) {
            panic!("schema {name} is not JSON Schema: {error}");
        }
        doc.validator(&json!({"$ref": format!("#/components/schemas/{name}")}));
    }

    // Operations: unique ids; JSON only; path parameters as the template names them.
    let mut ids = BTreeSet::new();
    for (method, path, operation) in doc.operations() {
        let id = operation["operationId"].as_str().expect("an operationId");
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        let responses = operation["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{method} {path}: no responses");
        for (status, response) in responses {
            let response = doc.resolve(response);
            assert!(
                response["description"].is_string(),
                "{method} {path} {status}: no description"
            );
            let content = response["content"].as_object().expect("content");
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                vec![JSON],
                "{method} {path} {status}"
            );
            doc.validator(&content[JSON]["schema"]);
        }
        if let Some(body) = operation.get("requestBody") {
            assert_eq!(body["required"], true, "{method} {path}: a body is required");
            let content = body["content"].as_object().expect("content");
            assert_eq!(content.keys().collect::<Vec<_>>(), vec![JSON], "{method} {path}");
            doc.validator(&content[JSON]["schema"]);
        }
        let mut parameters: Vec<&Value> = Vec::new();
        for list in [&json["paths"][&path]["parameters"], &operation["parameters"]] {
            parameters.extend(list.as_array().into_iter().flatten().map(|p| doc.resolve(p)));
        }
        let in_path: BTreeSet<&str> = parameters
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{method} {path}: path parameters are required");
                p["name"].as_str().expect("a name")
            })
            .collect();
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        assert_eq!(in_path, in_template, "{method} {path}: path parameters");
        for parameter in &parameters {
            doc.validator(&parameter["schema"]);
        }
    }

    // The error codes are exactly the protocol's.
    let documented: BTreeSet<String> = doc.schema("Error")["properties"]["code"]["enum"]
        .as_array()
        .expect("Error.code is an enum")
        .iter()
        .map(|code| code.as_str().expect("a code").to_owned())
        .collect();
    let protocol: BTreeSet<String> = every_error_code()
        .into_iter()
        .map(|code| serde_json::to_value(code).unwrap().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(documented, protocol, "Error.code");
}

#[test]
fn the_document_has_exactly_the_routes_of_the_api() {
    let doc = Document::load();
    let documented: BTreeSet<(String, String)> = doc
        .operations()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let mut routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|route| (route.method.to_owned(), route.path.to_owned()))
        .collect();
    routes.insert(("GET".to_owned(), OPENAPI_PATH.to_owned()));
    routes.insert(("POST".to_owned(), DEV_TOKEN_PATH.to_owned()));
    assert_eq!(documented, routes, "the document's operations against ROUTES");

    for route in ROUTES {
        let operation = doc.operation(route.method, route.path);
        assert_eq!(
            operation["x-roomcast-action"], route.action,
            "{} {}: the action",
            route.method, route.path
        );
        let successes: Vec<u16> = doc
            .statuses(route.method, route.path)
            .into_iter()
            .filter(|status| (200..300).contains(status))
            .collect();
        assert_eq!(
            successes,
            vec![route.status],
            "{} {}: the success",
            route.method,
            route.path
        );
        assert!(
            operation.get("security").is_none(),
            "{} {} needs the bearer token of the global `security`",
            route.method,
            route.path
        );
        assert!(
            doc.statuses(route.method, route.path).contains(&401),
            "{} {}: 401",
            route.method,
            route.path
        );
    }
    for (method, path) in [("GET", OPENAPI_PATH), ("POST", DEV_TOKEN_PATH)] {
        assert_eq!(
            doc.operation(method, path)["security"],
            json!([]),
            "{method} {path} needs no token"
        );
    }
    let dev = doc.operation("POST", DEV_TOKEN_PATH)["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        dev.contains("local gateway only"),
        "the dev-token route says it is local"
    );
}
