//! The cloud deployment, checked offline: `cfn-lint` on `template.yaml` and `infra/*.yaml`;
//! the CloudFormation that the SAM transform makes of `template.yaml` (every route with its
//! integration, permission and route response, the self-deploying stage, the `$connect`
//! authorizer in each `AuthMode`, the `Rules` that refuse a sign-in without keys or one
//! consumer group for both consumers, the table as in `infra/tables.json`, the event
//! source mappings of kafka-fanout and kafka-archive, the policies, the HTTP API and its
//! function in `deploy/http_api.rs`); and `sam build`, which must give every function a
//! `bootstrap`.
//!
//! Nothing is deployed, so CloudFormation's own part - choosing resources by `Conditions`,
//! `Fn::If`, `AWS::NoValue`, checking `Rules` - is done here by [`Stack`]
//! (`deploy/stack.rs`), a small evaluator of those intrinsics for given parameter values:
//! each parameter set is run through the SAM transform and then resolved as
//! CloudFormation would resolve it.
//!
//! The tools (cfn-lint, aws-sam-translator, aws-sam-cli, cargo-lambda, ziglang) live in a
//! venv that `scripts/install-deps` makes: `/opt/roomcast-ci/sam-venv`, or the directory
//! in `ROOMCAST_SAM_VENV`. `sam build` takes minutes from clean; it builds into
//! `target/sam` so that it never holds the lock of the target directory the tests are
//! built in. `ROOMCAST_SKIP_SAM_BUILD=1` marks that one test ignored (`tests/build.rs`), so
//! the run's summary counts it as not run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use roomcast_core::commands::ACTIONS;
use serde_json::Value;

mod abuse_bounds;
mod chat_page;
mod files;
mod http_api;
mod infra;
mod sign_in;
mod stack;

use stack::Stack;

const INSTALL_HINT: &str = "run ./scripts/install-deps: it installs cfn-lint, aws-sam-translator, aws-sam-cli, \
     cargo-lambda and ziglang from PyPI into /opt/roomcast-ci/sam-venv (or set ROOMCAST_SAM_VENV to a venv that has them)";

/// Each function of the template: its logical id and the binary cargo-lambda builds.
const FUNCTIONS: &[(&str, &str)] = &[
    ("ConnectFunction", "ws-connect"),
    ("DisconnectFunction", "ws-disconnect"),
    ("MessageFunction", "ws-message"),
    ("FanoutFunction", "kafka-fanout"),
    ("ArchiveFunction", "kafka-archive"),
    ("AuthorizerFunction", "ws-authorizer"),
    ("HttpApiFunction", "http-api"),
];

/// Variables the functions are given that libraries read, not roomcast's code: the log
/// filter (tracing-subscriber) and the root certificates' bundle (rustls-native-certs, for
/// the AWS SDK's TLS).
const LIBRARY_VARIABLES: &[&str] = &["RUST_LOG", "SSL_CERT_FILE"];

/// The functions that produce to Kafka (presence, messages), each with the same producer
/// settings, VPC placement and MSK permissions.
const PRODUCERS: &[&str] = &[
    "ConnectFunction",
    "DisconnectFunction",
    "MessageFunction",
    "FanoutFunction",
    "HttpApiFunction",
];

/// A function that reads the topic, each in a consumer group of its own: its event source
/// mappings (one for MSK, one for self-managed Kafka, chosen by conditions), the
/// parameter naming its group, and the policy that lets its MSK mapping read.
struct Consumer {
    function: &'static str,
    group: &'static str,
    default_group: &'static str,
    msk_mapping: &'static str,
    self_managed_mapping: &'static str,
    msk_policy: &'static str,
}

const CONSUMERS: &[Consumer] = &[
    Consumer {
        function: "FanoutFunction",
        group: "KafkaConsumerGroupId",
        default_group: "roomcast-fanout",
        msk_mapping: "MskEventSource",
        self_managed_mapping: "SelfManagedKafkaEventSource",
        msk_policy: "MskConsumerPolicy",
    },
    Consumer {
        function: "ArchiveFunction",
        group: "ArchiveConsumerGroupId",
        default_group: "roomcast-archive",
        msk_mapping: "ArchiveMskEventSource",
        self_managed_mapping: "ArchiveSelfManagedKafkaEventSource",
        msk_policy: "ArchiveMskConsumerPolicy",
    },
];

const MSK_CLUSTER_ARN: &str = "arn:aws:kafka:eu-west-1:123456789012:cluster/roomcast/abc";
const KAFKA_SECRET_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:roomcast-kafka-AbCdEf";

/// What every transform of the template is given: the one parameter without a default,
/// and a key source, which the `Rules` demand with the default `AuthMode` (required).
const BOOTSTRAP: (&str, &str) = ("KafkaBootstrapServers", "b-1.example:9096,b-2.example:9096");
const JWKS_URL: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example/.well-known/jwks.json";
/// The issuer of [`JWKS_URL`]'s tokens, which the `Rules` demand with it.
const JWKS_ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example";
const JWT_SECRET_ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:roomcast-jwt-AbCdEf";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root")
}

/// The venv's `bin`, with every tool the checks run.
fn tools_bin() -> PathBuf {
    let venv = std::env::var_os("ROOMCAST_SAM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/roomcast-ci/sam-venv"));
    let bin = venv.join("bin");
    for tool in ["cfn-lint", "sam", "cargo-lambda", "python3"] {
        assert!(
            bin.join(tool).is_file(),
            "`{tool}` is missing from {}: {INSTALL_HINT}",
            bin.display()
        );
    }
    bin
}

/// A tool of the venv (see [`in_venv`]).
fn tool(name: &str) -> Command {
    in_venv(tools_bin().join(name))
}

/// `program`, run at the workspace root with the venv first on PATH (so that cargo-lambda's
/// `python3 -m ziglang` finds zig), without telemetry, with a region and no credentials.
fn in_venv(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![tools_bin()];
    paths.extend(std::env::split_paths(&path));
    let mut command = Command::new(program);
    command
        .current_dir(root())
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1");
    command
}

fn run(mut command: Command) -> Output {
    let shown = format!("{command:?}");
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {shown}: {error}. {INSTALL_HINT}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Written straight to the process's stderr, past the test harness's capture: CI logs
/// show it even when the test passes.
fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn infra_templates() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("infra"))
        .expect("infra/")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    found.sort();
    found
}

#[test]
fn cfn_lint_is_clean_on_the_template_and_infra() {
    let mut command = tool("cfn-lint");
    command.arg("template.yaml");
    for template in infra_templates() {
        command.arg(template.strip_prefix(root()).expect("under the root"));
    }
    let output = run(command);
    assert!(
        output.status.success(),
        "cfn-lint found problems:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

// --- The SAM transform ----------------------------------------------------------------------

/// The CloudFormation that CloudFormation itself would make of a SAM template, as JSON.
fn transformed(template: &str, parameters: &[&str]) -> Value {
    let mut command = tool("python3");
    command
        .arg("infra/checks/sam_translate.py")
        .arg(template)
        .args(parameters);
    let output = run(command);
    assert!(
        output.status.success(),
        "the SAM transform of {template} failed:\n{}",
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the transform prints JSON")
}

/// `template.yaml` after the SAM transform, for one set of parameter values.
struct Template {
    /// The parameter values it was transformed with (the others take their defaults).
    given: BTreeMap<String, String>,
    /// The whole transformed template.
    document: Value,
    parameters: BTreeSet<String>,
    resources: BTreeMap<String, Value>,
}

impl Template {
    /// The transformed template with the default parameters (so `AuthMode` required, with
    /// a JWKS URL as the `Rules` demand), made once for the tests that read it.
    fn load() -> &'static Self {
        Self::with(&[("JwksUrl", JWKS_URL)])
    }

    /// The transformed template with these parameter values (and [`BOOTSTRAP`], and
    /// [`JWKS_ISSUER`] with a `JwksUrl` unless `JwtIssuer` is given), made once per
    /// distinct set.
    fn with(parameters: &[(&str, &str)]) -> &'static Self {
        type Cache = std::sync::Mutex<BTreeMap<Vec<String>, &'static Template>>;
        static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
        let given_name = |wanted: &str| parameters.iter().any(|(name, _)| *name == wanted);
        let issuer = (given_name("JwksUrl") && !given_name("JwtIssuer")).then_some(("JwtIssuer", JWKS_ISSUER));
        let given: BTreeMap<String, String> = std::iter::once(BOOTSTRAP)
            .chain(issuer)
            .chain(parameters.iter().copied())
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let arguments: Vec<String> = given.iter().map(|(name, value)| format!("{name}={value}")).collect();
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(template) = cache.get(&arguments) {
            return template;
        }
        let document = transformed(
            "template.yaml",
            &arguments.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let resources = document["Resources"]
            .as_object()
            .expect("Resources")
            .iter()
            .map(|(name, resource)| (name.clone(), resource.clone()))
            .collect();
        let parameters = document["Parameters"]
            .as_object()
            .expect("Parameters")
            .keys()
            .cloned()
            .collect();
        let template: &'static Template = Box::leak(Box::new(Template {
            given,
            document,
            parameters,
            resources,
        }));
        cache.insert(arguments, template);
        template
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, resource)| resource["Type"] == kind)
            .map(|(name, resource)| (name.as_str(), resource))
    }

    fn get(&self, name: &str) -> &Value {
        self.resources
            .get(name)
            .unwrap_or_else(|| panic!("no resource {name} in the transformed template"))
    }

    /// The stack CloudFormation would create from it with its parameter values.
    fn stack(&self) -> Stack<'_> {
        Stack::new(self)
    }
}

/// `{"Ref": "X"}` → `X`.
fn reference(value: &Value) -> Option<&str> {
    value.get("Ref").and_then(Value::as_str)
}

/// A number in the template, which YAML may have left as a string (`Default: "5000"`).
fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

/// The text of a `Fn::Sub` (its first form, or the string of its list form).
fn sub(value: &Value) -> Option<&str> {
    match value.get("Fn::Sub")? {
        Value::String(text) => Some(text),
        Value::Array(parts) => parts.first().and_then(Value::as_str),
        _ => None,
    }
}

/// `{"Fn::GetAtt": ["X", "Arn"]}` → `X`.
fn arn_of(value: &Value) -> Option<&str> {
    match value.get("Fn::GetAtt")? {
        Value::Array(parts) if parts.get(1).is_some_and(|part| part == "Arn") => parts[0].as_str(),
        Value::String(text) => text.strip_suffix(".Arn"),
        _ => None,
    }
}

fn function_for_route(route_key: &str) -> &'static str {
    match route_key {
        "$connect" => "ConnectFunction",
        "$disconnect" => "DisconnectFunction",
        _ => "MessageFunction",
    }
}

/// Every IAM policy statement in the template's roles and policies, `Fn::If` branches
/// included (both sides: a statement only some parameters enable is still checked).
fn statements(resources: &BTreeMap<String, Value>) -> Vec<(String, Value)> {
    fn collect(owner: &str, value: &Value, found: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::Array(statements)) = object.get("Statement") {
                    found.extend(statements.iter().map(|statement| (owner.to_owned(), statement.clone())));
                }
                for inner in object.values() {
                    collect(owner, inner, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect(owner, item, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for (name, resource) in resources {
        match resource["Type"].as_str() {
            Some("AWS::IAM::Role") => collect(name, &resource["Properties"]["Policies"], &mut found),
            Some("AWS::IAM::Policy") => collect(name, &resource["Properties"]["PolicyDocument"], &mut found),
            _ => {}
        }
    }
    found
}

fn actions_of(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(action) => vec![action.clone()],
        Value::Array(actions) => actions.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// The roles a policy is attached to (`Roles: [{"Ref": role}]`), those of both branches of
/// an `Fn::If` included (a role that exists only under a condition is attached so).
fn policy_roles(policy: &Value) -> BTreeSet<&str> {
    policy["Properties"]["Roles"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|role| match role["Fn::If"].as_array() {
            Some(branches) => branches.iter().skip(1).filter_map(reference).collect(),
            None => reference(role).into_iter().collect::<Vec<_>>(),
        })
        .filter(|role| *role != "AWS::NoValue")
        .collect()
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

#[test]
fn the_transformed_template_has_the_table_of_infra_tables_json() {
    let template = Template::load();
    let tables: Vec<_> = template.of_type("AWS::DynamoDB::Table").collect();
    assert_eq!(tables.len(), 1, "one table");
    let properties = &tables[0].1["Properties"];
    let shared: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("infra/tables.json")).expect("infra/tables.json"))
            .expect("infra/tables.json is JSON");
    assert_eq!(
        properties["TimeToLiveSpecification"]["Enabled"], true,
        "the table needs TTL"
    );
    assert_eq!(properties["BillingMode"], "PAY_PER_REQUEST");
    assert!(
        properties["GlobalSecondaryIndexes"]
            .as_array()
            .is_some_and(|gsis| !gsis.is_empty()),
        "the table needs its GSI"
    );
    // Properties the template may add (a name, tags, point-in-time recovery) are fine;
    // every one infra/tables.json defines must be the same.
    for (key, value) in shared.as_object().expect("tables.json is an object") {
        assert_eq!(
            &properties[key], value,
            "template.yaml's table and infra/tables.json disagree on {key}: change both together"
        );
    }
}

/// The Rust source compiled into a function's binary: its crate's `src` and that of every
/// workspace crate it depends on, through path dependencies (declared in the root
/// `Cargo.toml`'s `[workspace.dependencies]`).
fn sources_of(binary: &str) -> String {
    fn workspace_paths() -> BTreeMap<String, PathBuf> {
        let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
        manifest
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.split_once('=')?;
                let path = rest.split("path = \"").nth(1)?.split('"').next()?;
                Some((name.trim().to_owned(), root().join(path)))
            })
            .collect()
    }
    fn rust_files(dir: &Path, into: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                rust_files(&path, into);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                into.push_str(&std::fs::read_to_string(&path).expect("a source file"));
            }
        }
    }
    let paths = workspace_paths();
    let mut seen = BTreeSet::new();
    let mut queue = vec![root().join("functions").join(binary)];
    let mut source = String::new();
    while let Some(dir) = queue.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        rust_files(&dir.join("src"), &mut source);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap_or_else(|error| panic!("{}/Cargo.toml: {error}", dir.display()));
        let dependencies = manifest
            .split("\n[")
            .filter(|section| section.starts_with("dependencies]"))
            .flat_map(str::lines)
            .skip(1);
        for line in dependencies {
            let name = line.split(['=', '.']).next().unwrap_or_default().trim();
            if let Some(path) = paths.get(name) {
                queue.push(path.clone());
            }
        }
    }
    source
}

#[test]
fn the_transformed_template_wires_functions_kafka_and_least_privilege() {
    let template = Template::load();
    let stack = template.stack();

    // Every variable a function is given must be one its code reads.
    for (name, binary) in FUNCTIONS {
        let function = template.get(name);
        assert_eq!(function["Type"], "AWS::Lambda::Function", "{name}");
        assert_eq!(function["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        assert_eq!(function["Metadata"]["BuildProperties"]["Binary"], *binary, "{name}");
        let properties = &function["Properties"];
        assert_eq!(properties["Runtime"], "provided.al2023", "{name}");
        assert_eq!(properties["Handler"], "bootstrap", "{name}");
        assert_eq!(properties["Architectures"], serde_json::json!(["x86_64"]), "{name}");
        let variables = properties["Environment"]["Variables"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has no environment"));
        if *binary == "ws-authorizer" {
            assert!(
                !variables.contains_key("ROOMCAST_TABLE"),
                "the authorizer has no business with the table"
            );
        } else {
            assert!(variables.contains_key("ROOMCAST_TABLE"), "{name} needs ROOMCAST_TABLE");
        }
        assert_eq!(
            reference(&variables["ROOMCAST_AUTH"]),
            Some("AuthMode"),
            "{name} needs ROOMCAST_AUTH"
        );
        // provided.al2023's bundle (Amazon Linux's ca-certificates): the SDK reads it alone.
        assert_eq!(
            variables["SSL_CERT_FILE"], "/etc/pki/tls/certs/ca-bundle.crt",
            "{name}: SSL_CERT_FILE"
        );
        let source = sources_of(binary);
        for variable in variables.keys() {
            assert!(
                LIBRARY_VARIABLES.contains(&variable.as_str()) || source.contains(&format!("\"{variable}\"")),
                "{name} is given {variable}, which no source of {binary} (nor of the workspace crates it uses) reads"
            );
        }
    }
    // ... and every function of the template is one of FUNCTIONS, so that `sam build` is
    // checked to make its bootstrap.
    let listed: BTreeSet<&str> = FUNCTIONS.iter().map(|(name, _)| *name).collect();
    for (name, _) in template.of_type("AWS::Lambda::Function") {
        assert!(
            listed.contains(name),
            "{name} is missing from FUNCTIONS (deploy.rs): add it with its binary"
        );
    }
    let fanout_env = &template.get("FanoutFunction")["Properties"]["Environment"]["Variables"];
    let endpoint = sub(&fanout_env["ROOMCAST_CONNECTIONS_ENDPOINT"]).unwrap_or_default();
    assert!(
        endpoint.starts_with("https://${WebSocketApi}.execute-api.${AWS::Region}.")
            && endpoint.ends_with("/${StageName}"),
        "kafka-fanout's ROOMCAST_CONNECTIONS_ENDPOINT: {endpoint}"
    );

    // The producers: the same Kafka settings, the same VPC placement, each role allowed to
    // produce to MSK (the policy is there only with MSK; its Roles are checked regardless).
    let message = &template.get("MessageFunction")["Properties"];
    let producer_policy = template.get("MskProducerPolicy");
    assert_eq!(producer_policy["Condition"], "UseMsk");
    let producer_roles = policy_roles(producer_policy);
    for producer in PRODUCERS {
        let properties = &template.get(producer)["Properties"];
        let variables = &properties["Environment"]["Variables"];
        assert_eq!(
            reference(&variables["ROOMCAST_KAFKA_BOOTSTRAP"]),
            Some("KafkaBootstrapServers"),
            "{producer}"
        );
        assert_eq!(
            reference(&variables["ROOMCAST_TOPIC"]),
            Some("KafkaTopic"),
            "{producer}"
        );
        for variable in ["ROOMCAST_KAFKA_AUTH", "ROOMCAST_KAFKA_SECRET_ARN"] {
            assert_eq!(
                variables[variable], message["Environment"]["Variables"][variable],
                "{producer}'s {variable} must be ws-message's"
            );
        }
        assert_eq!(
            properties["VpcConfig"], message["VpcConfig"],
            "{producer} must reach the brokers as ws-message does"
        );
        let role = arn_of(&properties["Role"]).unwrap_or_else(|| panic!("{producer} needs a role of its own"));
        assert!(
            producer_roles.contains(role),
            "MskProducerPolicy must be attached to {producer}'s role {role}: {producer_roles:?}"
        );
        // The VPC policy (network interfaces on *) only when the function is in a VPC.
        let managed = &template.get(role)["Properties"]["ManagedPolicyArns"];
        assert_eq!(managed["Fn::If"][0], "InVpc", "{role}'s managed policies: {managed}");
    }
    assert_eq!(
        producer_roles.len(),
        PRODUCERS.len(),
        "only the producers may produce: {producer_roles:?}"
    );

    // The consumers: kafka-fanout and kafka-archive, each through an MSK or a self-managed
    // event source mapping (chosen by conditions), on the same topic with the same batch
    // and starting position, each in its own consumer group.
    let mappings: BTreeMap<&str, &Value> = template.of_type("AWS::Lambda::EventSourceMapping").collect();
    let expected: BTreeSet<&str> = CONSUMERS
        .iter()
        .flat_map(|consumer| [consumer.msk_mapping, consumer.self_managed_mapping])
        .collect();
    assert_eq!(
        mappings.keys().copied().collect::<BTreeSet<_>>(),
        expected,
        "an MSK and a self-managed event source mapping for each consumer"
    );
    let fanout_mapping = &mappings["MskEventSource"]["Properties"];
    for consumer in CONSUMERS {
        let function = consumer.function;
        for name in [consumer.msk_mapping, consumer.self_managed_mapping] {
            let properties = &mappings[name]["Properties"];
            assert_eq!(reference(&properties["FunctionName"]), Some(function), "{name}");
            assert_eq!(
                properties["Topics"],
                serde_json::json!([{"Ref": "KafkaTopic"}]),
                "{name}"
            );
            assert_eq!(reference(&properties["BatchSize"]), Some("KafkaBatchSize"), "{name}");
            // Fan-out starts where the deployer says; the archive always at the oldest
            // record kept, so history misses nothing (its writes are idempotent).
            if function == "ArchiveFunction" {
                assert_eq!(properties["StartingPosition"], "TRIM_HORIZON", "{name}");
            } else {
                assert_eq!(
                    reference(&properties["StartingPosition"]),
                    Some("KafkaStartingPosition"),
                    "{name}"
                );
            }
            assert_eq!(
                properties["MaximumBatchingWindowInSeconds"], fanout_mapping["MaximumBatchingWindowInSeconds"],
                "{name}"
            );
        }
        let msk = mappings[consumer.msk_mapping];
        assert_eq!(msk["Condition"], "UseMsk", "{}", consumer.msk_mapping);
        assert_eq!(reference(&msk["Properties"]["EventSourceArn"]), Some("MskClusterArn"));
        assert_eq!(
            reference(&msk["Properties"]["AmazonManagedKafkaEventSourceConfig"]["ConsumerGroupId"]),
            Some(consumer.group),
            "{}'s consumer group",
            consumer.msk_mapping
        );
        assert_eq!(
            msk["DependsOn"], consumer.msk_policy,
            "{}: Lambda checks the role's permissions when the mapping is created",
            consumer.msk_mapping
        );
        let own = mappings[consumer.self_managed_mapping];
        assert_eq!(own["Condition"], "UseSelfManaged", "{}", consumer.self_managed_mapping);
        let own = &own["Properties"];
        assert!(own["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"].is_object());
        assert_eq!(
            reference(&own["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"]),
            Some(consumer.group),
            "{}'s consumer group",
            consumer.self_managed_mapping
        );
        assert_eq!(
            own["SourceAccessConfigurations"],
            mappings["SelfManagedKafkaEventSource"]["Properties"]["SourceAccessConfigurations"],
            "{}: the same SASL/SCRAM secret as kafka-fanout's",
            consumer.self_managed_mapping
        );
        assert_eq!(
            template.document["Parameters"][consumer.group]["Default"], consumer.default_group,
            "{}",
            consumer.group
        );

        // Each mapping reads with its function's role, in its own group only.
        let role = arn_of(&template.get(function)["Properties"]["Role"])
            .unwrap_or_else(|| panic!("{function} needs a role of its own"));
        let policy = template.get(consumer.msk_policy);
        assert_eq!(policy["Condition"], "UseMsk", "{}", consumer.msk_policy);
        assert_eq!(
            policy_roles(policy),
            BTreeSet::from([role]),
            "{} belongs to {function}'s role",
            consumer.msk_policy
        );
        let groups: Vec<String> = statements(&BTreeMap::from([(consumer.msk_policy.to_owned(), policy.clone())]))
            .into_iter()
            .filter(|(_, statement)| actions_of(statement).iter().any(|action| action.ends_with("Group")))
            .map(|(_, statement)| statement["Resource"].to_string())
            .collect();
        assert_eq!(
            groups.len(),
            1,
            "{}: one statement on the group: {groups:?}",
            consumer.msk_policy
        );
        assert!(
            groups[0].contains(&format!(":group/${{Cluster}}/${{{}}}", consumer.group)),
            "{} may join {} only: {}",
            consumer.msk_policy,
            consumer.group,
            groups[0]
        );
    }
    let secret_readers: BTreeSet<&str> = CONSUMERS
        .iter()
        .map(|consumer| consumer.function)
        .chain(PRODUCERS.iter().copied())
        .map(|function| arn_of(&template.get(function)["Properties"]["Role"]).expect("a role"))
        .collect();
    assert_eq!(
        policy_roles(template.get("SelfManagedKafkaSecretPolicy")),
        secret_readers,
        "SelfManagedKafkaSecretPolicy belongs to the consumers' roles, whose mappings read the secret, \
         and the producers', which read it at cold start"
    );

    // By default the two groups differ; a Rule refuses a stack where they would not.
    let groups: BTreeSet<String> = CONSUMERS
        .iter()
        .map(|consumer| stack.parameter(consumer.group).to_string())
        .collect();
    assert_eq!(groups.len(), CONSUMERS.len(), "one consumer group each: {groups:?}");
    assert!(stack.rule_failures().is_empty(), "{:?}", stack.rule_failures());
    let shared = Template::with(&[
        ("JwksUrl", JWKS_URL),
        ("KafkaConsumerGroupId", "roomcast"),
        ("ArchiveConsumerGroupId", "roomcast"),
    ]);
    let failures = shared.stack().rule_failures();
    assert!(
        failures.len() == 1 && failures[0].starts_with("ConsumerGroupsDiffer:"),
        "one consumer group for both consumers must be refused: {failures:?}"
    );

    // Least privilege: no wildcard actions, no Scan, @connections POST on this API only,
    // secrets read one by one.
    let everything = statements(&template.resources);
    assert!(!everything.is_empty());
    for (owner, statement) in &everything {
        for action in actions_of(statement) {
            assert!(
                !action.ends_with('*'),
                "wildcard action {action} in {owner}: {statement}"
            );
            assert_ne!(action, "dynamodb:Scan", "nothing may Scan the table");
            if action == "execute-api:ManageConnections" {
                let resource = sub(&statement["Resource"]).unwrap_or_default();
                assert!(
                    resource.contains(":${WebSocketApi}/${StageName}/POST/@connections/"),
                    "ManageConnections must be limited to POST on this API's stage: {resource}"
                );
            }
            if action.starts_with("dynamodb:") {
                let resource = statement["Resource"].to_string();
                assert!(
                    resource.contains("Table"),
                    "{action} on something else than the table: {resource}"
                );
            }
            if action.starts_with("secretsmanager:") {
                assert_eq!(action, "secretsmanager:GetSecretValue", "{owner}");
                let secret = reference(&statement["Resource"]);
                assert!(
                    matches!(secret, Some("JwtSecretArn" | "KafkaSecretArn")),
                    "{owner} may read only the secret a parameter names: {statement}"
                );
            }
        }
    }
    // With these parameters (MSK off, no secrets, no VPC), what the stack really grants.
    for (owner, statement) in statements(&stack.resources) {
        for action in actions_of(&statement) {
            assert!(
                !action.starts_with("secretsmanager:") && !action.starts_with("kafka") && !action.starts_with("ec2:"),
                "{owner} is granted {action} in a stack with neither MSK nor secrets"
            );
        }
    }
}

/// Every policy statement a role is granted in `resources`: its own `Policies` and those of
/// every `AWS::IAM::Policy` attached to it.
fn granted_to(resources: &BTreeMap<String, Value>, role: &str) -> Vec<Value> {
    let attached: BTreeMap<String, Value> = resources
        .iter()
        .filter(|(name, resource)| {
            name.as_str() == role || (resource["Type"] == "AWS::IAM::Policy" && policy_roles(resource).contains(role))
        })
        .map(|(name, resource)| (name.clone(), resource.clone()))
        .collect();
    statements(&attached)
        .into_iter()
        .map(|(_, statement)| statement)
        .collect()
}

/// The Kafka set-ups a stack can have: self-managed without and with SASL/SCRAM, and MSK
/// (whose producers need the VPC).
fn kafka_setups() -> [(&'static str, &'static Template); 3] {
    [
        ("self-managed", Template::with(&[("JwksUrl", JWKS_URL)])),
        (
            "self-managed with SCRAM",
            Template::with(&[("JwksUrl", JWKS_URL), ("KafkaSecretArn", KAFKA_SECRET_ARN)]),
        ),
        (
            "MSK",
            Template::with(&[
                ("JwksUrl", JWKS_URL),
                ("MskClusterArn", MSK_CLUSTER_ARN),
                ("VpcSubnetIds", "subnet-0a,subnet-0b"),
                ("VpcSecurityGroupIds", "sg-0a"),
            ]),
        ),
    ]
}

/// In each Kafka set-up the stack really has one event source mapping per consumer, on the
/// same topic, in two different consumer groups, reading with the right credentials.
#[test]
fn each_kafka_setup_has_one_mapping_per_consumer_in_its_own_group() {
    for (setup, template) in kafka_setups() {
        let stack = template.stack();
        assert!(stack.rule_failures().is_empty(), "{setup}: {:?}", stack.rule_failures());
        let mappings: BTreeMap<&str, &Value> = stack.of_type("AWS::Lambda::EventSourceMapping").collect();
        let msk = setup == "MSK";
        let expected: BTreeSet<&str> = CONSUMERS
            .iter()
            .map(|consumer| {
                if msk {
                    consumer.msk_mapping
                } else {
                    consumer.self_managed_mapping
                }
            })
            .collect();
        assert_eq!(mappings.keys().copied().collect::<BTreeSet<_>>(), expected, "{setup}");

        let mut groups = BTreeSet::new();
        for consumer in CONSUMERS {
            let name = if msk {
                consumer.msk_mapping
            } else {
                consumer.self_managed_mapping
            };
            let properties = &mappings[name]["Properties"];
            assert_eq!(
                reference(&properties["FunctionName"]),
                Some(consumer.function),
                "{setup}: {name}"
            );
            assert_eq!(
                properties["Topics"],
                serde_json::json!([{"Ref": "KafkaTopic"}]),
                "{setup}: {name}"
            );
            let config = if msk {
                "AmazonManagedKafkaEventSourceConfig"
            } else {
                "SelfManagedKafkaEventSourceConfig"
            };
            let group = reference(&properties[config]["ConsumerGroupId"])
                .unwrap_or_else(|| panic!("{setup}: {name} has no {config}.ConsumerGroupId"));
            groups.insert(stack.parameter(group).to_string());
            if msk {
                assert_eq!(
                    reference(&properties["EventSourceArn"]),
                    Some("MskClusterArn"),
                    "{setup}: {name}"
                );
            }
            let secret = properties.get("SourceAccessConfigurations");
            if setup == "self-managed with SCRAM" {
                assert_eq!(
                    secret,
                    Some(&serde_json::json!([{"Type": "SASL_SCRAM_512_AUTH", "URI": {"Ref": "KafkaSecretArn"}}])),
                    "{setup}: {name}"
                );
            } else {
                assert!(secret.is_none(), "{setup}: {name}: {secret:?}");
            }
            // The role it reads with has what the mapping needs in this set-up.
            let role = arn_of(&stack.get(consumer.function).expect("the consumer")["Properties"]["Role"])
                .expect("the consumer's role");
            let actions: BTreeSet<String> = granted_to(&stack.resources, role).iter().flat_map(actions_of).collect();
            let needed: &[&str] = match setup {
                "MSK" => &[
                    "kafka:DescribeClusterV2",
                    "kafka:GetBootstrapBrokers",
                    "ec2:CreateNetworkInterface",
                    "kafka-cluster:Connect",
                    "kafka-cluster:ReadData",
                    "kafka-cluster:DescribeGroup",
                    "kafka-cluster:AlterGroup",
                ],
                "self-managed with SCRAM" => &["secretsmanager:GetSecretValue"],
                _ => &[],
            };
            for action in needed {
                assert!(
                    actions.contains(*action),
                    "{setup}: {role} needs {action} for {name}: {actions:?}"
                );
            }
        }
        assert_eq!(
            groups.len(),
            CONSUMERS.len(),
            "{setup}: one consumer group each: {groups:?}"
        );
    }
}

/// kafka-archive writes the history and nothing else: the two conditional writes on the
/// table (no read, no Query, no Scan, no DeleteItem), no Kafka produce, no @connections, no
/// VPC; reading the topic in its own group is all its mapping may do. Its settings are the
/// ones `Env::archive` and `Env::store` read.
#[test]
fn kafka_archive_may_write_the_history_and_nothing_else() {
    use roomcast_core::archive::ArchiveConfig;

    let template = Template::load();
    let function = template.get("ArchiveFunction");
    let properties = &function["Properties"];
    let variables = properties["Environment"]["Variables"]
        .as_object()
        .expect("kafka-archive's environment");
    assert_eq!(
        variables.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "ROOMCAST_AUTH",
            "RUST_LOG",
            "SSL_CERT_FILE",
            "ROOMCAST_TABLE",
            "ROOMCAST_HISTORY_DAYS"
        ]),
        "kafka-archive needs the table and the retention; no Kafka producer, no @connections"
    );
    assert_eq!(reference(&variables["ROOMCAST_TABLE"]), Some("Table"));
    assert_eq!(reference(&variables["ROOMCAST_HISTORY_DAYS"]), Some("HistoryDays"));
    let days = &template.document["Parameters"]["HistoryDays"];
    assert_eq!(days["Type"], "Number");
    assert_eq!(
        days["Default"].to_string().trim_matches('"'),
        (ArchiveConfig::default().retention.as_secs() / 86_400).to_string(),
        "HistoryDays' default is the code's"
    );
    assert_eq!(
        days["MinValue"].to_string().trim_matches('"'),
        "1",
        "ROOMCAST_HISTORY_DAYS must be at least 1"
    );
    let source = sources_of("kafka-archive");
    assert!(
        source.contains("env.archive()") && source.contains("env.store("),
        "kafka-archive reads its settings with Env::archive and Env::store"
    );

    let role = arn_of(&properties["Role"]).expect("kafka-archive's role");
    assert!(
        !PRODUCERS.contains(&"ArchiveFunction"),
        "kafka-archive does not produce"
    );
    for (setup, template) in kafka_setups() {
        let stack = template.stack();
        let function = stack.get("ArchiveFunction").expect("ArchiveFunction");
        assert!(
            function["Properties"].get("VpcConfig").is_none(),
            "{setup}: kafka-archive reaches only DynamoDB: no VPC"
        );
        let managed = &stack.get(role).expect("kafka-archive's role")["Properties"]["ManagedPolicyArns"];
        let logs_only = "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
        assert_eq!(
            managed,
            &serde_json::json!([{ "Fn::Sub": logs_only }]),
            "{setup}: kafka-archive's role: its logs, no VPC access"
        );
        let granted = granted_to(&stack.resources, role);
        let mut dynamodb = BTreeSet::new();
        for statement in &granted {
            assert_eq!(statement["Effect"], "Allow", "{setup}: {statement}");
            for action in actions_of(statement) {
                let (service, name) = action.split_once(':').unwrap_or_default();
                match service {
                    "dynamodb" => {
                        assert_eq!(
                            arn_of(&statement["Resource"]),
                            Some("Table"),
                            "{setup}: kafka-archive's {action} on the table only (no index): {statement}"
                        );
                        dynamodb.insert(action.clone());
                    }
                    // What its MSK event source mapping needs, in its own group (see
                    // the wiring test).
                    "kafka" => assert!(
                        ["DescribeClusterV2", "GetBootstrapBrokers"].contains(&name),
                        "{setup}: {action}"
                    ),
                    "kafka-cluster" => assert!(
                        [
                            "Connect",
                            "DescribeClusterDynamicConfiguration",
                            "DescribeTopic",
                            "ReadData",
                            "DescribeGroup",
                            "AlterGroup"
                        ]
                        .contains(&name),
                        "{setup}: kafka-archive may read the topic, never write it: {action}"
                    ),
                    "ec2" => assert!(
                        name.ends_with("NetworkInterface")
                            || name.ends_with("NetworkInterfaces")
                            || name.starts_with("Describe"),
                        "{setup}: {action}"
                    ),
                    "secretsmanager" => {
                        assert_eq!(name, "GetSecretValue", "{setup}");
                        assert_eq!(reference(&statement["Resource"]), Some("KafkaSecretArn"), "{setup}");
                    }
                    _ => panic!("{setup}: kafka-archive's role grants {action}: {statement}"),
                }
            }
        }
        // Only in the history's partitions: every conversation's key is among the allowed
        // leading keys, and no key of a connection, a user, a room, a nickname.
        for statement in granted.iter().filter(|statement| {
            actions_of(statement)
                .iter()
                .any(|action| action.starts_with("dynamodb:"))
        }) {
            let patterns = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                .as_array()
                .unwrap_or_else(|| {
                    panic!("{setup}: kafka-archive's table access must be limited by dynamodb:LeadingKeys: {statement}")
                });
            assert_eq!(
                statement["Condition"].as_object().map(|condition| condition.len()),
                Some(1),
                "{statement}"
            );
            let patterns: Vec<&str> = patterns.iter().filter_map(Value::as_str).collect();
            let allowed = |key: &str| patterns.iter().any(|pattern| string_like(pattern, key));
            for key in history_keys() {
                assert!(
                    allowed(&key),
                    "{setup}: kafka-archive may not write {key:?}: {patterns:?}"
                );
            }
            for key in other_keys() {
                assert!(!allowed(&key), "{setup}: kafka-archive may write {key:?}: {patterns:?}");
            }
        }
        assert_eq!(
            dynamodb,
            BTreeSet::from(["dynamodb:PutItem".to_owned(), "dynamodb:UpdateItem".to_owned()]),
            "{setup}: kafka-archive keeps a message with a conditional PutItem, applies an edit or \
             a delete with a conditional UpdateItem, and does nothing else to the table"
        );
    }
}

/// IAM's `StringLike`: `*` matches any run of characters, `?` any one character.
fn string_like(pattern: &str, value: &str) -> bool {
    let (pattern, value): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // matches[j]: whether the pattern read so far matches value[..j].
    let mut matches = vec![false; value.len() + 1];
    matches[0] = true;
    for p in pattern {
        let mut next = vec![false; value.len() + 1];
        for j in 0..=value.len() {
            next[j] = match p {
                '*' => matches[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matches[j - 1],
                c => j > 0 && matches[j - 1] && value[j - 1] == c,
            };
        }
        matches = next;
    }
    matches[value.len()]
}

/// Partition keys of the history, as the DynamoDB adapter makes them: rooms and direct
/// conversations, with user ids that hold `#`, `*` and other characters.
fn history_keys() -> Vec<String> {
    use roomcast_aws::dynamo::keys;
    use roomcast_core::history::Conversation;
    use roomcast_core::{RoomName, UserId};

    let mut found = vec![
        keys::conversation(&Conversation::Room(RoomName::trusted("general"))),
        keys::conversation(&Conversation::Room(RoomName::trusted("admin"))),
    ];
    for (a, b) in [("u1", "u2"), ("auth0|abc#1", "HIST#x*"), ("é", "")] {
        found.push(keys::conversation(&Conversation::direct(
            UserId::new(a),
            UserId::new(b),
        )));
        // Each user's list of direct conversations.
        found.push(keys::conversations_of(&UserId::new(a)));
    }
    // How far each partition is archived.
    found.push(keys::archived(0, 0));
    found.push(keys::archived(255, 2));
    found
}

/// Partition keys of everything else in the table: connections, users, rooms (catalog and
/// memberships), nicknames.
fn other_keys() -> Vec<String> {
    use roomcast_aws::dynamo::keys;
    use roomcast_core::{ConnectionId, Nick, RoomName, UserId};

    vec![
        keys::connection(&ConnectionId::new("HIST#abc=")),
        keys::user(&UserId::new("HIST#u1")),
        keys::room(&RoomName::trusted("general")),
        keys::nick(&Nick::trusted("alice")),
    ]
}

#[test]
fn string_like_is_iams() {
    assert!(string_like("HIST#*", "HIST#ROOM#a"));
    assert!(string_like("HIST#*", "HIST#"));
    assert!(!string_like("HIST#*", "HIST"));
    assert!(!string_like("HIST#*", "ROOM#HIST#"));
    assert!(string_like("a?c*", "abcdef"));
    assert!(!string_like("a?c", "ac"));
    assert!(string_like("*", ""));
}

/// kafka-fanout's memory (its CPU share, which signing a large room's posts needs) and its
/// posts in flight are the deployer's to set, with the code's defaults.
#[test]
fn kafka_fanout_takes_its_memory_and_concurrency_from_parameters() {
    let template = Template::load();
    let properties = &template.get("FanoutFunction")["Properties"];
    assert_eq!(reference(&properties["MemorySize"]), Some("FanoutMemorySize"));
    assert_eq!(
        reference(&properties["Environment"]["Variables"]["ROOMCAST_FANOUT_CONCURRENCY"]),
        Some("FanoutConcurrency")
    );
    let parameter = |name: &str, field: &str| number(&template.document["Parameters"][name][field]);
    assert_eq!(
        parameter("FanoutConcurrency", "Default"),
        roomcast_core::fan_out::FanOutConfig::default().concurrency as u64,
        "FanoutConcurrency's default is the code's"
    );
    assert!(
        parameter("FanoutConcurrency", "MinValue") >= 1,
        "ROOMCAST_FANOUT_CONCURRENCY must be at least 1"
    );
    // Lambda's own bounds for MemorySize: a value outside them fails the deploy, late.
    assert!(parameter("FanoutMemorySize", "MinValue") >= 128);
    assert!(parameter("FanoutMemorySize", "MaxValue") <= 10_240);
}

/// ws-message reads the history (`history`: a Query; `edit`, `delete`, a reply: a GetItem
/// of the message) and, for a message kafka-archive has not stored yet, its record in
/// Kafka (on MSK: ReadData on the topic; a group named, never joined), before producing: its timeout covers
/// the read and the produce, each bounded by the delivery timeout, under API Gateway's
/// 29 s integration limit. It does not wait for the archive: nothing configures a wait.
#[test]
fn ws_message_reads_the_history_and_the_log_within_its_timeout() {
    let template = Template::load();
    let properties = &template.get("MessageFunction")["Properties"];
    let variables = &properties["Environment"]["Variables"];
    assert!(
        variables.get("ROOMCAST_ARCHIVE_LAG_MS").is_none()
            && template.document["Parameters"].get("ArchiveLagMs").is_none(),
        "nothing waits for the archive any more"
    );
    // A read back and a produce, each within the delivery timeout (5 s by default), then
    // the reply: a few seconds to spare.
    let timeout = number(&properties["Timeout"]);
    assert!(
        (5 + 5 + 3..=29).contains(&timeout),
        "ws-message's Timeout {timeout} s must cover a read back and a produce comfortably, \
         and stay within API Gateway's 29 s"
    );
    let msk = Template::with(&[
        ("JwksUrl", JWKS_URL),
        ("MskClusterArn", MSK_CLUSTER_ARN),
        ("VpcSubnetIds", "subnet-0a,subnet-0b"),
        ("VpcSecurityGroupIds", "sg-0a"),
    ])
    .stack();
    for function in ["MessageFunction", "HttpApiFunction"] {
        let role = arn_of(&msk.get(function).expect("the function")["Properties"]["Role"]).expect("its role");
        let on_topic: BTreeSet<String> = granted_to(&msk.resources, role)
            .iter()
            .filter(|statement| statement["Resource"].to_string().contains(":topic/"))
            .flat_map(actions_of)
            .collect();
        for action in [
            "kafka-cluster:DescribeTopic",
            "kafka-cluster:ReadData",
            "kafka-cluster:WriteData",
        ] {
            assert!(
                on_topic.contains(action),
                "MSK: {function} needs {action} on the topic: {on_topic:?}"
            );
        }
        // The group the reader names (librdkafka needs one to assign), which it never joins.
        let on_groups: Vec<(String, Vec<String>)> = granted_to(&msk.resources, role)
            .iter()
            .filter(|statement| statement["Resource"].to_string().contains(":group/"))
            .map(|statement| (statement["Resource"].to_string(), actions_of(statement)))
            .collect();
        assert!(
            on_groups.iter().any(|(resource, actions)| resource
                .contains(&format!("/{}", roomcast_aws::kafka::READ_BACK_GROUP))
                && actions == &["kafka-cluster:DescribeGroup"]),
            "MSK: {function} may describe the read-back group, and do nothing else with it: {on_groups:?}"
        );
        assert!(
            on_groups
                .iter()
                .all(|(_, actions)| !actions.iter().any(|action| action == "kafka-cluster:AlterGroup")),
            "MSK: {function} joins no group: {on_groups:?}"
        );
    }

    let role = arn_of(&properties["Role"]).expect("ws-message's role");
    let on_table: BTreeSet<String> = granted_to(&template.resources, role)
        .iter()
        .filter(|statement| arn_of(&statement["Resource"]) == Some("Table"))
        .flat_map(actions_of)
        .collect();
    for action in ["dynamodb:GetItem", "dynamodb:Query"] {
        assert!(
            on_table.contains(action),
            "ws-message reads the history with {action}: {on_table:?}"
        );
    }
}

/// The two functions that write chat messages make their ids with the log's epoch
/// (`ROOMCAST_LOG_EPOCH`, docs/deploy.md): one parameter gives both the same, with the
/// code's default and the range `Env::domain` accepts, so a deployer who makes the topic
/// anew raises it in one place.
#[test]
fn both_writers_of_chat_messages_take_the_log_epoch_from_one_parameter() {
    let template = Template::load();
    for function in ["MessageFunction", "HttpApiFunction"] {
        let variables = &template.get(function)["Properties"]["Environment"]["Variables"];
        assert_eq!(
            reference(&variables["ROOMCAST_LOG_EPOCH"]),
            Some("LogEpoch"),
            "{function}"
        );
    }
    let parameter = &template.document["Parameters"]["LogEpoch"];
    assert_eq!(
        number(&parameter["Default"]),
        u64::from(roomcast_core::Config::default().log_epoch)
    );
    assert_eq!(
        (number(&parameter["MinValue"]), number(&parameter["MaxValue"])),
        (0, 255)
    );
    let read = |value: &str| {
        roomcast_aws::config::Env::new(|name: &str| (name == "ROOMCAST_LOG_EPOCH").then(|| value.to_owned()))
            .domain()
            .map(|config| config.log_epoch)
    };
    assert_eq!(read("255").ok(), Some(255));
    assert!(read("256").is_err(), "the parameter's range is the reader's");
}

/// http-api, the function that takes nickname leases, takes their length from a parameter
/// with the code's default (ws-message, which runs the same commands with the same
/// settings, is given it too); a lease of a few seconds at least, so that a polling client
/// keeps its name between two polls.
#[test]
fn http_api_takes_the_nickname_lease_from_a_parameter() {
    let template = Template::load();
    for function in ["HttpApiFunction", "MessageFunction"] {
        let variables = &template.get(function)["Properties"]["Environment"]["Variables"];
        assert_eq!(
            reference(&variables["ROOMCAST_NICK_LEASE_SECS"]),
            Some("NickLeaseSecs"),
            "{function}"
        );
    }
    let parameter = &template.document["Parameters"]["NickLeaseSecs"];
    assert_eq!(
        number(&parameter["Default"]),
        roomcast_core::Config::default().nick_lease.as_secs()
    );
    assert!(
        number(&parameter["MinValue"]) >= 10,
        "a lease must outlast a poll interval"
    );
}

/// The DynamoDB actions the roles grant are the ones the DynamoDB adapter
/// (`functions/aws/src/dynamo`, its table set-up aside) issues, on the table and on its
/// index: none missing, which would fail in AWS only, and none left over from code that
/// changed.
#[test]
fn the_roles_grant_the_dynamodb_actions_the_adapter_issues_and_no_others() {
    /// How the SDK calls read in the source, and the IAM action each needs.
    const CALLS: &[(&str, &str)] = &[
        (".get_item()", "dynamodb:GetItem"),
        (".put_item()", "dynamodb:PutItem"),
        (".update_item()", "dynamodb:UpdateItem"),
        (".delete_item()", "dynamodb:DeleteItem"),
        (".query()", "dynamodb:Query"),
        (".batch_get_item()", "dynamodb:BatchGetItem"),
        (".batch_write_item()", "dynamodb:BatchWriteItem"),
        (".transact_get_items()", "dynamodb:GetItem"),
        // A transaction needs the action of each of its parts.
        ("Put::builder()", "dynamodb:PutItem"),
        ("Update::builder()", "dynamodb:UpdateItem"),
        ("Delete::builder()", "dynamodb:DeleteItem"),
        ("ConditionCheck::builder()", "dynamodb:ConditionCheckItem"),
    ];
    let dir = root().join("functions/aws/src/dynamo");
    let mut on_table = BTreeSet::new();
    let mut on_index = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("functions/aws/src/dynamo") {
        let path = entry.expect("a directory entry").path();
        // schema.rs creates the table for local runs and tests; no function calls it.
        if path.extension().is_none_or(|ext| ext != "rs") || path.ends_with("schema.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a source file");
        let code: String = source
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (call, action) in CALLS {
            if code.contains(call) {
                on_table.insert(*action);
            }
        }
        if code.contains(".index_name(") {
            on_index.insert("dynamodb:Query");
        }
    }
    assert!(
        on_table.contains("dynamodb:Query"),
        "found no DynamoDB calls in {}",
        dir.display()
    );

    let template = Template::load();
    let mut granted_table = BTreeSet::new();
    let mut granted_index = BTreeSet::new();
    for (owner, statement) in statements(&template.resources) {
        for action in actions_of(&statement) {
            if !action.starts_with("dynamodb:") {
                continue;
            }
            if arn_of(&statement["Resource"]) == Some("Table") {
                granted_table.insert(action.clone());
            } else if sub(&statement["Resource"]).is_some_and(|arn| arn == "${Table.Arn}/index/*") {
                granted_index.insert(action.clone());
            } else {
                panic!("{owner} grants {action} on {}", statement["Resource"]);
            }
        }
    }
    let granted_table: BTreeSet<&str> = granted_table.iter().map(String::as_str).collect();
    let granted_index: BTreeSet<&str> = granted_index.iter().map(String::as_str).collect();
    assert_eq!(
        granted_table, on_table,
        "the actions granted on the table (left) and those the adapter issues (right) differ"
    );
    assert_eq!(
        granted_index, on_index,
        "the actions granted on the index (left) and those the adapter issues on it (right) differ"
    );
}

// --- sam build ------------------------------------------------------------------------------

/// The target `sam build` builds for (cargo-lambda's default on x86_64).
const LAMBDA_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Each crate the functions depend on, with the sets of features it is built with (a crate
/// can be built twice: for build scripts and proc macros, and for the function).
fn dependency_features(binary: &str) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root().join("functions").join(binary))
        .args([
            "tree",
            "--locked",
            "--offline",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["--target", LAMBDA_TARGET, "--format", "{p}|{f}"]);
    let output = run(command);
    assert!(
        output.status.success(),
        "cargo tree of {binary} failed:\n{}",
        text(&output.stderr)
    );
    let mut crates: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text(&output.stdout).lines() {
        let line = line.trim_end_matches(" (*)");
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        // The workspace's own crates are each function's own business.
        if package.contains(" (/") {
            continue;
        }
        crates
            .entry(package.to_owned())
            .or_default()
            .insert(features.to_owned());
    }
    crates
}

/// `sam build` runs cargo once per function, in the function's directory, so each
/// function's features are resolved apart. A crate two functions share but build with
/// different features is compiled twice, and so is every crate above it: one function's
/// extra feature of a TLS crate or of `syn` made ws-authorizer's build compile the AWS SDK,
/// hyper and librdkafka again (61 units, minutes of CI). roomcast-aws's `lambda` feature
/// asks for the union; this keeps it so.
#[test]
fn the_functions_share_one_dependency_tree() {
    let trees: Vec<(&str, BTreeMap<String, BTreeSet<String>>)> = FUNCTIONS
        .iter()
        .map(|(_, binary)| (*binary, dependency_features(binary)))
        .collect();
    let mut split = Vec::new();
    for (i, (first, first_tree)) in trees.iter().enumerate() {
        for (second, second_tree) in &trees[i + 1..] {
            for (package, features) in first_tree {
                match second_tree.get(package) {
                    Some(other) if other != features => {
                        split.push(format!("{package}: {first} {features:?}, {second} {other:?}"))
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(
        split.is_empty(),
        "crates built with other features for different functions (ask for the union in \
         functions/aws/Cargo.toml's `lambda` feature):\n{}",
        split.join("\n")
    );
}

/// ELF, 64-bit, x86-64: what a Lambda on x86_64 runs.
fn is_x86_64_elf(bytes: &[u8]) -> bool {
    bytes.len() > 20 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && u16::from_le_bytes([bytes[18], bytes[19]]) == 0x3e
}

#[test]
#[cfg_attr(
    skip_sam_build,
    ignore = "ROOMCAST_SKIP_SAM_BUILD=1: `sam build` is not checked (tests/build.rs)"
)]
fn sam_build_makes_a_bootstrap_for_every_function() {
    // Its own target directory: a sam build holds it for minutes, and must not hold (or
    // rebuild) the one the tests are built in.
    let target = root().join("target").join("sam");
    let build_dir = target.join("build");
    // Other tests run meanwhile, some with timeouts: `nice` leaves them the CPU first.
    let mut command = in_venv("nice");
    command
        .args(["-n", "10"])
        .arg(tools_bin().join("sam"))
        .args(["build", "--template-file", "template.yaml", "--build-dir"])
        .arg(&build_dir)
        .env("CARGO_TARGET_DIR", &target);
    let started = Instant::now();
    let output = run(command);
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "sam build failed after {elapsed:.0?}:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    report(&format!(
        "deploy: sam build took {:.0?} (CARGO_TARGET_DIR={})",
        elapsed,
        target.display()
    ));
    for (name, binary) in FUNCTIONS {
        let bootstrap = build_dir.join(name).join("bootstrap");
        let bytes = std::fs::read(&bootstrap)
            .unwrap_or_else(|error| panic!("sam build made no {}: {error}", bootstrap.display()));
        assert!(is_x86_64_elf(&bytes), "{} is not an x86-64 ELF", bootstrap.display());
        report(&format!(
            "deploy: {name} ({binary}) bootstrap: {} bytes ({:.1} MB)",
            bytes.len(),
            bytes.len() as f64 / 1_000_000.0
        ));
    }
}
